"""Closure study of the delay calibration: does runCalibration give back the delays the
emulator used, and do its ±1σ intervals cover the truth 68.3 % of the time?

    .venv/bin/python examples/closure/closure.py [--workdir DIR] [--tests N] [--reduced]

For each threshold (15000 e, where the sampled BX histogram moves with the delay everywhere,
and 5800 e, the usual one, with plateaus):

1. templates: one emulator scan (501 delays, 0.1 ns apart) of 10^6 hits;
2. tests: ``--tests`` histograms (default 2000) at true delays drawn uniformly in [6, 44] ns,
   off the template grid, each from its own 10^4 hits, one emulate-mode file each (the delay
   axis of such a file has one bin, centred on its delay);
3. ``runCalibration closure.yml`` with the three built-in evaluators, once with the default
   Feldman-Cousins intervals and once with ``--sigma rise-of-one`` (physics.md §8);
4. the table: per threshold, evaluator and interval, tests, coverage ± its binomial error
   √(f(1 − f)/n), bias ± std/√n, resolution (std) ± std/√(2(n − 1)), share of tests on a
   plateau or with a histogram that is the same over a range of delays; printed, and written
   as ``closure_table.csv``/``.md`` with a plot per threshold (``closure_thr<E>.png/pdf``).

The hits come from a model of their own, not the one the project's tests use: charges from a
Moyal (Landau-like) law of most probable value 20000 e and scale 2800 e (drawn as
MPV − scale · ln Y, Y a χ²₁ variable), arrival times N(0.3, 1.5) ns. ``--reduced`` (the
test suite's version) uses 400 tests of 2000 hits and templates of 3·10^5 hits.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from timecal_analysis import runcalibration
from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import scan_delays
from timecal_script_cbcsim.detection import emulate

HERE = Path(__file__).resolve().parent
THRESHOLDS = (15000, 5800)
TRUE_DELAYS = (6.0, 44.0)
MPV, SCALE = 20000.0, 2800.0
ARRIVAL_MEAN, ARRIVAL_SIGMA = 0.3, 1.5


@dataclass(frozen=True)
class Setup:
    tests: int = 2000
    test_hits: int = 10_000
    template_hits: int = 1_000_000
    seed: int = 2027

    @classmethod
    def reduced(cls) -> "Setup":
        return cls(tests=400, test_hits=2000, template_hits=300_000)


def make_hits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(charge, arrival time) float32: Moyal charges, Gaussian arrival times."""
    charge = MPV - SCALE * np.log(rng.gamma(0.5, 2.0, n))  # -ln of a chi2(1) variable is Moyal
    return charge.astype(np.float32), rng.normal(ARRIVAL_MEAN, ARRIVAL_SIGMA, n).astype(np.float32)


def write_inputs(workdir: Path, threshold: int, setup: Setup) -> None:
    """templates_thr<E>.root and tests_thr<E>/test_<i>.root (kept when present)."""
    rng = np.random.default_rng([setup.seed, threshold])
    templates = workdir / f"templates_thr{threshold}.root"
    if not templates.exists():
        delays = scan_delays()
        hists = emulate(*make_hits(setup.template_hits, rng), float(threshold), delays)
        write_histograms(templates, hists, {"threshold": threshold, "hits": setup.template_hits},
                                with_1d=False)
    tests = workdir / f"tests_thr{threshold}"
    tests.mkdir(exist_ok=True)
    truth = np.random.default_rng([setup.seed, threshold, 1]).uniform(*TRUE_DELAYS, setup.tests)
    for i, delay in enumerate(truth):
        path = tests / f"test_{i:05d}.root"
        if path.exists():
            continue
        test_rng = np.random.default_rng([setup.seed, threshold, 2, i])
        hists = emulate(*make_hits(setup.test_hits, test_rng), float(threshold), [delay])
        write_histograms(path, hists, {"threshold": threshold, "delay": float(delay)}, with_1d=False)


def calibrate(workdir: Path, threshold: int, interval: str) -> pd.DataFrame:
    out = workdir / f"results_thr{threshold}_{interval}"
    code = runcalibration.main([str(HERE / "closure.yml"), "--custom", f"workdir={workdir}",
                                f"threshold={threshold}", "-o", str(out), "--sigma", interval, "--no-plots"])
    if code:
        raise SystemExit(code)
    return pd.read_parquet(out / "results.parquet")


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per threshold, interval and evaluator, each figure with its uncertainty."""
    rows = []
    for (threshold, interval, method), group in results.groupby(["threshold", "interval", "method"], sort=False):
        n = len(group)
        residual = group["delay"] - group["true_delay"]
        covered = ((group["true_delay"] >= group["lower"]) & (group["true_delay"] <= group["upper"])).mean()
        spread = residual.std(ddof=1)
        rows.append({"threshold": threshold, "interval": interval, "evaluator": method, "tests": n,
                     "coverage": covered, "coverage_error": np.sqrt(covered * (1 - covered) / n),
                     "bias": residual.mean(), "bias_error": spread / np.sqrt(n),
                     "resolution": spread, "resolution_error": spread / np.sqrt(2 * (n - 1)),
                     "plateau": group["plateau"].mean(), "degenerate": group["degenerate"].mean(),
                     "median_width": (group["upper"] - group["lower"]).median()})
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| threshold | ±1σ interval | evaluator | tests | coverage | bias [ns] | resolution [ns] | "
             "on a plateau | degenerate |", "|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.threshold} e | {r.interval} | {r.evaluator} | {r.tests} | "
                     f"{100 * r.coverage:.1f} ± {100 * r.coverage_error:.1f} % | {r.bias:+.3f} ± {r.bias_error:.3f} | "
                     f"{r.resolution:.3f} ± {r.resolution_error:.3f} | {100 * r.plateau:.0f} % | "
                     f"{100 * r.degenerate:.0f} % |")
    return "\n".join(lines)


def plot(results: pd.DataFrame, out: Path, threshold: int) -> None:
    """Coverage and resolution per 4 ns of true delay, per evaluator, both intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    data = results[results["threshold"] == threshold].assign(
        covered=lambda t: (t["true_delay"] >= t["lower"]) & (t["true_delay"] <= t["upper"]),
        residual=lambda t: t["delay"] - t["true_delay"],
        slice=lambda t: np.floor((t["true_delay"] - TRUE_DELAYS[0]) / 4) * 4 + TRUE_DELAYS[0] + 2)
    fig, axes = plt.subplots(2, 1, figsize=(10, 11), sharex=True)
    hep.cms.label(data=False, ax=axes[0], rlabel=f"threshold {threshold} e", fontsize=14)
    for (interval, method), group in data.groupby(["interval", "method"]):
        per = group.groupby("slice").agg(coverage=("covered", "mean"), resolution=("residual", "std"),
                                         n=("covered", "size"))
        style = "o-" if interval == "feldman-cousins" else "s--"
        label = f"{method}, {'Feldman-Cousins' if interval == 'feldman-cousins' else 'rise of 1'}"
        axes[0].errorbar(per.index, 100 * per["coverage"],
                         yerr=100 * np.sqrt(per["coverage"] * (1 - per["coverage"]) / per["n"]), fmt=style,
                         label=label, ms=4)
        axes[1].plot(per.index, per["resolution"], style, ms=4)
    axes[0].axhline(68.3, color="k", lw=0.8)
    axes[0].axhspan(65.3, 71.3, color="grey", alpha=0.2)
    axes[0].set_ylabel(r"$\pm1\sigma$ coverage [%]")
    axes[1].set_ylabel("Resolution [ns]")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("True delay [ns]")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize="x-small")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    for suffix in (".png", ".pdf"):
        fig.savefig(out.with_suffix(suffix))
    plt.close(fig)


def run(workdir: Path, setup: Setup, thresholds=THRESHOLDS, plots: bool = True) -> pd.DataFrame:
    workdir.mkdir(parents=True, exist_ok=True)
    if "TIMECAL_CONFIG" not in os.environ:  # keep the evaluator cache inside the work directory
        rc = workdir / "timerc"
        rc.write_text(f"[paths]\ncalibration = {workdir / 'calibration'}\n")
        os.environ["TIMECAL_CONFIG"] = str(rc)
    frames = []
    for threshold in thresholds:
        write_inputs(workdir, threshold, setup)
        for interval in runcalibration.INTERVALS:
            frames.append(calibrate(workdir, threshold, interval).assign(threshold=threshold, interval=interval))
    results = pd.concat(frames, ignore_index=True)
    summary = table(results)
    summary.to_csv(workdir / "closure_table.csv", index=False)
    (workdir / "closure_table.md").write_text(
        f"{setup.tests} tests per threshold, {setup.test_hits} hits each, templates of {setup.template_hits} "
        f"hits (Moyal {MPV:g}/{SCALE:g} e, arrival N({ARRIVAL_MEAN}, {ARRIVAL_SIGMA}) ns, true delays uniform "
        f"in [{TRUE_DELAYS[0]:g}, {TRUE_DELAYS[1]:g}] ns)\n\n" + markdown(summary) + "\n")
    if plots:
        for threshold in thresholds:
            plot(results, workdir / f"closure_thr{threshold}", threshold)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="closure-output", help="where inputs and results go")
    parser.add_argument("--tests", type=int, help="tests per threshold (default 2000; 400 with --reduced)")
    parser.add_argument("--reduced", action="store_true", help="the test suite's version: 400 tests of 2000 hits")
    parser.add_argument("--threshold", type=int, action="append", help="only this threshold (repeatable)")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    setup = Setup.reduced() if args.reduced else Setup()
    if args.tests:
        setup = Setup(args.tests, setup.test_hits, setup.template_hits, setup.seed)
    workdir = Path(args.workdir).resolve()
    summary = run(workdir, setup, tuple(args.threshold or THRESHOLDS), plots=not args.no_plots)
    print(markdown(summary))
    print(f"table: {workdir / 'closure_table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
