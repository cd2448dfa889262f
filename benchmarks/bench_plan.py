"""Planning a 30,000-point grid with half of it already done on disk (issue 2).

Goal: under 0.5 s, and at least 50x faster than the naive planner (glob every result
directory, read each params.json, remove the matches from the list of points), both
measured here in the same run on the same directory.

    python benchmarks/bench_plan.py [--points 30000] [--quick]
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from timecal_core.grid import plan_grid
from timecal_core.parameters import complete
from timecal_core.plugins import get_registry


def make_grid(points: int, files: dict) -> dict:
    thresholds = list(range(3000, 3000 + 100 * (points // 300), 100))
    return {"threshold": thresholds, "pileup": [0, 50, 100, 140, 200, 250, 300, 350, 400, 450],
            "tofsmearing": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5],
            "pt": [1.0, 2.0, 3.0], **files}


def naive_plan(script, grid, production):
    """The straightforward planner: expand, then read every finished task back."""
    names = [p.name for p in script.parameters]
    axes = [grid[n] if isinstance(grid.get(n), list) else [grid[n]] if n in grid else [None] for n in names]
    todo = []
    for combo in itertools.product(*axes):
        given = {n: v for n, v in zip(names, combo) if v is not None}
        todo.append(complete(script.parameters, given, "grid"))
    for path in glob.glob(os.path.join(production, "results", "*", "params.json")):
        with open(path) as fh:
            params = json.load(fh)["params"]
        if params in todo:
            todo.remove(params)
    return todo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=30000)
    ap.add_argument("--quick", action="store_true", help="3,000 points")
    args = ap.parse_args()
    points = 3000 if args.quick else args.points
    script = get_registry().script("pucalibration").item
    work = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    try:
        for name in ("hs.txt", "pu.txt"):
            (work / name).write_text("file:x.root\n")
        grid = make_grid(points, {"HSfile": str(work / "hs.txt"), "PUfile": str(work / "pu.txt")})
        production = work / "prod"
        first = plan_grid(script, grid, production)
        n = len(first.tasks)
        for spec in first.tasks[::2]:  # half of them done, as execute_task leaves them
            d = production / "results" / spec.dirname
            d.mkdir(parents=True)
            (d / "params.json").write_text(json.dumps({"params": dict(spec.params), "output": "x.root"}))
        t0 = time.perf_counter()
        plan = plan_grid(script, grid, production)
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        todo = naive_plan(script, grid, str(production))
        naive = time.perf_counter() - t0
        assert len(plan.pending) == len(todo) == n - len(first.tasks[::2]), (len(plan.pending), len(todo))
        print(f"grid: {n} points, {len(plan.done)} done on disk, {len(plan.pending)} to run")
        print(f"timecal plan_grid : {fast:8.3f} s   (goal < 0.5 s: {'OK' if fast < 0.5 else 'MISSED'})")
        print(f"naive planner     : {naive:8.3f} s")
        print(f"speed-up          : {naive / fast:8.1f}x  (goal >= 50x: {'OK' if naive / fast >= 50 else 'MISSED'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
