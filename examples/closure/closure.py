"""Closure study of the delay calibration: does runCalibration give back the delays the
emulator used, with ±1σ intervals that cover the truth about 68 % of the time?

    .venv/bin/python examples/closure/closure.py [--workdir DIR] [--quick] [--threshold E]

1. templates: one emulator scan (501 delays) of 10^6 hits drawn with seed 1;
2. tests: 81 histograms at 5, 5.5, ... 45 ns, each from its own 10^4 hits (seeds 2, 3, ...:
   independent of the templates and of each other, like 81 emulate-mode jobs), stored as
   the rows of one file;
3. ``runCalibration closure.yml`` with the three built-in evaluators;
4. bias, resolution and coverage per 5 ns of true delay, printed and plotted
   (``closure_summary_thr<E>.png/pdf`` in the work directory), and per evaluator the
   closure line: bias, mean |residual|, coverage ± its binomial error, tests on a plateau.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from timecal_analysis import runcalibration
from timecal_analysis.calibration import PLATEAU_WIDTH
from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import BXHistograms, scan_delays
from timecal_script_cbcsim.detection import emulate

HERE = Path(__file__).resolve().parent
THRESHOLD = 15000.0  # the sampled histogram moves with the delay everywhere in [5, 45] ns


def make_hits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Moyal (Landau-like) charges around 22k electrons, 1.2 ns Gaussian arrival times."""
    rng = np.random.default_rng(seed)
    charge = 22000.0 + 2500.0 * -np.log(rng.standard_normal(n) ** 2)
    return charge.astype(np.float32), rng.normal(0.0, 1.2, n).astype(np.float32)


def write_scan(path: Path, n_hits: int, seed: int, threshold: float) -> None:
    if path.exists():
        print(f"keeping {path}")
        return
    delays = scan_delays()
    hists = emulate(*make_hits(n_hits, seed), threshold, delays)
    params = {"threshold": threshold, "N": n_hits, "seed": seed, "mode": "scan"}
    write_histograms(path, hists, params, with_1d=False)
    print(f"wrote {path} ({n_hits} hits, seed {seed})")


def write_tests(path: Path, n_hits: int, first_seed: int, threshold: float) -> None:
    """One emulate job per delay, harvested into one file (a 0.5 ns OffsetScan axis)."""
    if path.exists():
        print(f"keeping {path}")
        return
    delays = np.arange(5.0, 45.0 + 1e-9, 0.5)
    jobs = [emulate(*make_hits(n_hits, first_seed + i), threshold, [d]) for i, d in enumerate(delays)]
    rows = {key: np.concatenate([getattr(job, key) for job in jobs])
            for key in ("sampled", "latched", "attribution_sampled", "attribution_latched")}
    hists = BXHistograms(delays, n_hits=n_hits, offset_step=0.5, **rows)
    params = {"threshold": threshold, "N": n_hits, "seeds": f"{first_seed}..{first_seed + len(delays) - 1}"}
    write_histograms(path, hists, params, with_1d=False)
    print(f"wrote {path} ({len(delays)} delays, {n_hits} independent hits each)")


def summarise(table: pd.DataFrame, width: float = 5.0) -> pd.DataFrame:
    table = table.assign(residual=table["delay"] - table["true_delay"],
                         covered=(table["true_delay"] >= table["lower"]) & (table["true_delay"] <= table["upper"]),
                         # the last bin is closed: 45 ns joins [40, 45]
                         delay_bin=np.floor(np.minimum(table["true_delay"], 44.999) / width) * width)
    return (table.groupby(["method", "delay_bin"])
            .agg(points=("residual", "size"), bias=("residual", "mean"),
                 resolution=("residual", "std"), coverage=("covered", "mean"))
            .reset_index())


def plot(summary: pd.DataFrame, out: Path, threshold: float, width: float = 5.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    fig, axes = plt.subplots(3, 1, figsize=(10, 12), sharex=True)
    hep.cms.label(data=False, ax=axes[0], rlabel=f"threshold {threshold:.0f} e", fontsize=14)
    for method, group in summary.groupby("method"):
        x = group["delay_bin"] + width / 2
        axes[0].plot(x, group["bias"], "o-", label=method)
        axes[1].plot(x, group["resolution"], "o-", label=method)
        axes[2].plot(x, 100 * group["coverage"], "o-", label=method)
    axes[0].axhline(0, color="k", lw=0.8)
    axes[2].axhspan(55, 80, color="grey", alpha=0.2, label="55-80 %")
    axes[2].axhline(68.3, color="k", lw=0.8, ls="--")
    axes[0].set_ylabel("Bias [ns]")
    axes[1].set_ylabel("Resolution [ns]")
    axes[2].set_ylabel(r"$\pm1\sigma$ coverage [%]")
    axes[2].set_xlabel("True delay [ns]")
    axes[0].legend()
    axes[2].legend()
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(out.with_suffix(suffix))
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="closure-output", help="where inputs and results go")
    parser.add_argument("--quick", action="store_true", help="10x fewer template hits")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="electrons (default 15000; ~5800 has plateaus where no method can "
                             "tell delays apart)")
    args = parser.parse_args()
    thr = int(args.threshold)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if "TIMECAL_CONFIG" not in os.environ:  # keep the evaluator cache inside the work directory
        rc = workdir / "timerc"
        rc.write_text(f"[paths]\ncalibration = {workdir / 'calibration'}\n")
        os.environ["TIMECAL_CONFIG"] = str(rc)

    write_scan(workdir / f"templates_thr{thr}_seed1.root", 100_000 if args.quick else 1_000_000, seed=1,
               threshold=float(thr))
    write_tests(workdir / f"tests_thr{thr}_seed2.root", 10_000, first_seed=2, threshold=float(thr))
    results = workdir / f"results_thr{thr}"
    code = runcalibration.main([str(HERE / "closure.yml"), "--custom", f"workdir={workdir}",
                                f"threshold={thr}", "-o", str(results)])
    if code:
        return code
    table = pd.read_parquet(results / "results.parquet")
    summary = summarise(table)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(summary.to_string(index=False))
    print(f"threshold {thr} e, {100_000 if args.quick else 1_000_000} template hits, 10000 hits per test:")
    for method, group in table.groupby("method"):
        residual = group["delay"] - group["true_delay"]
        covered = ((group["true_delay"] >= group["lower"]) & (group["true_delay"] <= group["upper"])).mean()
        error = np.sqrt(covered * (1 - covered) / len(group))
        print(f"{method:<20} {len(group)} points: bias {residual.mean():+.3f} ns, mean |residual| "
              f"{residual.abs().mean():.3f} ns, resolution {residual.std():.3f} ns, coverage "
              f"{100 * covered:.0f} ± {100 * error:.0f}%, on a plateau (interval > {PLATEAU_WIDTH:g} ns) "
              f"{100 * group['plateau'].mean():.0f}%")
    plot(summary, workdir / f"closure_summary_thr{thr}", float(thr))
    print(f"plots: {workdir / f'closure_summary_thr{thr}.png'} and {results / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
