"""Scan observables of 100 harvested files (501 delays, both modes): timecal's reader (six
2D maps per file with uproot, numpy) against the seed's PyROOT loop (TFile, Get of each 1D
histogram, GetBinContent), measured in the same run. Goal (issue 6): at least 15x faster.

    .venv/bin/python benchmarks/bench_observables.py [--quick] [--files N]

The files are generated once (CBC emulator on the test-vector hits, one threshold per
file, written with layout.write_histograms) into .bench/observables/ and reused.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT_DIR / "tests"))

import numpy as np  # noqa: E402

from scanprod import BASE_PARAMS, emulated_histograms  # noqa: E402
from timecal_core.cms.fast_root import write_histograms  # noqa: E402
from timecal_core.cms.harvested_layout import MODES, harvested_name, hist1d_name  # noqa: E402
from timecal_analysis.observables import build_table  # noqa: E402
from timecal_core.contract.hookspecs import FinishedTask  # noqa: E402

CACHE = ROOT_DIR / ".bench" / "observables"


def production(n_files: int) -> list[FinishedTask]:
    tasks = []
    for i in range(n_files):
        params = dict(BASE_PARAMS, threshold=4000.0 + 50.0 * i)
        directory = CACHE / "results" / f"task{i:03d}__{i:010x}"
        output = directory / harvested_name(params)
        if not (directory / "params.json").is_file():
            directory.mkdir(parents=True, exist_ok=True)
            write_histograms(output, emulated_histograms(params["threshold"], seed=i), params)
            (directory / "params.json").write_text(json.dumps({"task_id": f"{i:010x}", "params": params,
                                                               "output": output.name}))
            print(f"  generated {i + 1}/{n_files}", end="\r", file=sys.stderr)
        tasks.append(FinishedTask(f"{i:010x}", params, directory, output, None, None))
    return tasks


def seed_loop(paths: list[Path]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """The seed's computation: every observable from PyROOT objects, bin by bin."""
    import ROOT

    base = "DQMData/Run 1/Ph2TkBXHist/Run summary"
    results = {}
    for path in paths:
        f = ROOT.TFile.Open(str(path))
        for mode in MODES:
            offset = f.Get(f"{base}/Hist2D/OffsetScan{mode}")
            hits = f.Get(f"{base}/Hist2D/HitsTrueNumberScan{mode}")
            attribution = f.Get(f"{base}/Hist2D/AttributionScan{mode}")
            x0 = offset.GetXaxis().FindBin(0.0)
            out = {"efficiency": [], "fire_rate": [], "out_of_time": [], "mean": []}
            for iy in range(1, offset.GetNbinsY() + 1):
                delay = offset.GetYaxis().GetBinCenter(iy)
                den = hits.GetBinContent(x0, iy)
                out["efficiency"].append(offset.GetBinContent(x0, iy) / den if den else 0.0)
                for x in (x0 - 1, x0 + 1):  # previous / next BX contamination
                    den = hits.GetBinContent(x, iy)
                    _ = offset.GetBinContent(x, iy) / den if den else 0.0
                total = sum(attribution.GetBinContent(ix, iy) for ix in range(0, attribution.GetNbinsX() + 2))
                fired = sum(attribution.GetBinContent(ix, iy) for ix in range(2, attribution.GetNbinsX() + 2))
                out["fire_rate"].append(fired / total if total else 0.0)
                h = f.Get(f"{base}/Hist1D/{hist1d_name(mode, round(delay, 6))}")
                sum_w = sum_out = var_out = sum_wc = var_wc = 0.0
                for i in range(1, h.GetNbinsX() + 1):
                    w, s, c = h.GetBinContent(i), h.GetBinError(i), h.GetBinCenter(i)
                    sum_w += w
                    sum_wc += w * c
                    var_wc += (s * c) ** 2
                    if abs(c) > 0.5:
                        sum_out += w
                        var_out += s * s
                out["out_of_time"].append(sum_out / sum_w if sum_w else math.nan)
                out["mean"].append(sum_wc / sum_w if sum_w else math.nan)
            results[(str(path), mode)] = out
        f.Close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 files instead of 100")
    parser.add_argument("--files", type=int, help="number of files (default 100, --quick 10)")
    args = parser.parse_args()
    n_files = args.files or (10 if args.quick else 100)
    tasks = production(n_files)
    paths = [t.output for t in tasks]
    for p in paths:  # both readers start from a warm page cache
        p.read_bytes()

    build_table(tasks[:1])  # warm both up (imports, uproot classes, cppyy JIT): steady state
    seed_loop(paths[:1])

    start = time.perf_counter()
    table = build_table(tasks)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    reference = seed_loop(paths)
    seed = time.perf_counter() - start

    for (path, mode), out in reference.items():  # same numbers, or the comparison means nothing
        rows = table[(table["file"] == path) & (table["mode"] == mode)]
        for key, values in out.items():
            np.testing.assert_allclose(rows[key].to_numpy(), values, rtol=1e-9, atol=1e-12, err_msg=key)

    n_objects = n_files * len(MODES) * (len(table) // (n_files * len(MODES)) + 3)
    print(f"files: {n_files} (501 delays x {len(MODES)} modes each; {n_objects} objects in the seed loop)")
    print(f"timecal (uproot maps + numpy):       {ours:8.2f} s  ({1000 * ours / n_files:6.1f} ms/file)")
    print(f"seed (PyROOT Get + GetBinContent):   {seed:8.2f} s  ({1000 * seed / n_files:6.1f} ms/file)")
    print(f"speed-up: {seed / ours:.1f}x (goal >= 15x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
