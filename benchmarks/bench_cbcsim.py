"""cbcsim speed: a full 501-delay scan of 100,000 selected hits (compat, Sampled + Latched,
attribution included) against the CBC header compiled with g++ -O2 running the analyzer's
own loop (per hit, per delay, per BX, 23 latched samples), in the same run, on the same hits
(synthetic model, smeared per module). Goal of issue 3: >= 50x faster, identical histograms.

    .venv/bin/python benchmarks/bench_cbcsim.py [--quick] [--hits N] [--exact]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.cxx_cbc import run_cxx  # noqa: E402

from timecal_core.cms.harvested_layout import scan_delays  # noqa: E402
from timecal_script_cbcsim.detection import emulate  # noqa: E402
from timecal_script_cbcsim.hits import SimHits, selection  # noqa: E402
from timecal_script_cbcsim.smearing import ModuleSmearing  # noqa: E402
from timecal_script_cbcsim.synthetic import SyntheticModel, generate  # noqa: E402

HISTS = ("sampled", "latched", "attribution_sampled", "attribution_latched")


def selected_hits(n: int, seed: int = 1) -> SimHits:
    """n hits passing the default selection (pt >= 2 GeV, ALL), from the synthetic model."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < n:
        hits = generate(SyntheticModel(nhits=500_000), rng)
        hits = hits.take(selection(hits, 2.0, "ALL"))
        parts.append(hits)
        total += len(hits)
    return SimHits.concatenate(parts).take(slice(0, n))


def compare(model: str, hits: SimHits, toa, thr, delays, repeat: int) -> bool:
    cxx = run_cxx(hits.charge, toa, thr, delays, model=model, opt="-O2")
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        ours = emulate(hits.charge, toa, thr, delays, model)
        best = min(best, time.perf_counter() - start)
    same = all(np.array_equal(getattr(ours, name), cxx[name]) for name in HISTS)
    print(f"[{model}] {len(hits)} hits x {delays.size} delays, Sampled + Latched + attribution")
    print(f"  C++ header, g++ -O2, analyzer loop : {cxx['seconds']:9.3f} s  (wall incl. I/O {cxx['wall_seconds']:.3f} s)")
    print(f"  cbcsim emulate (numpy)              : {best:9.3f} s  (best of {repeat})")
    goal = "   (goal >= 50 x)" if model == "compat" else ""
    print(f"  ratio C++ / cbcsim                  : {cxx['seconds'] / best:9.1f} x{goal}")
    print(f"  histograms identical                : {same}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 hits instead of 100,000")
    parser.add_argument("--hits", type=int, default=None, help="number of selected hits")
    parser.add_argument("--exact", action="store_true",
                        help="also time the exact model (its C++ loop is ~10x slower than compat)")
    args = parser.parse_args()
    n = args.hits or (10_000 if args.quick else 100_000)
    hits = selected_hits(n)
    smearing = ModuleSmearing.draw(hits.module, 300.0, 0.5, seed=1)
    toa, thr = smearing.apply(hits.module, hits.toa, 5800.0)
    delays = scan_delays(0.0, 50.0, 0.1)
    ok = compare("compat", hits, toa, thr, delays, repeat=3)
    if args.exact:
        ok &= compare("exact", hits, toa, thr, delays, repeat=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
