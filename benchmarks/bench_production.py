"""Emulator productions end to end (issue 17): cbcsim grids through ``BXRun --dask local``
on this machine's cores, warm steps + fast writer against today's path (a fresh Python
subprocess per task + one uproot assignment per object, i.e. ``TIMECAL_WARM_STEPS=0
TIMECAL_CBCSIM_WRITER=uproot``) in the same run, for synthetic hits and for one sim-hit dump.

The slow path runs the first points of the same grid only (at ~1 task/s per core a full
grid would take most of an hour); rates are compared in tasks/s. Each figure comes from the
production itself: ``params.json`` (task start/end, step wall time and CPU) and the line
cbcsim writes to ``task.log`` (time in hits + emulation and in writing). Rates run from the
first task's start to the last task's end; cluster start-up and the aggregators are shown
apart, and included in the extrapolated wall time of a 29,106-task grid.

Goals: ratio >= 10x, 29,106 tasks in under one hour on 2 cores. First (issue 28) the same
fast grid in the full and in the compact output layout: tasks/s and bytes per task.

    .venv/bin/python benchmarks/bench_production.py [--quick] [--tasks N] [--slow-tasks N] [--workers W]
                                                     [--layouts-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BXRUN = str(Path(sys.executable).with_name("BXRun"))
FULL_GRID = 29_106
LOG_LINE = re.compile(r"hits and emulation ([\d.]+) s, write ([\d.]+) s")


def grid_yaml(n: int, dump: Path | None) -> str:
    """About n points of a threshold x smearing rescan: 4 points per threshold, thresholds
    10 e- apart, so the slow path's smaller grid is the first thresholds of the same grid."""
    thresholds = [4000 + 10 * i for i in range(max(1, n // 4))]
    if dump is None:
        other = {"thresholdsmearing": [0, 400], "seed": [1, 2]}
    else:
        other = {"tofsmearing": [0.0, 1.0], "pt": [1.0, 2.0], "hits": str(dump)}
    return json.dumps({"threshold": thresholds, **other}) + "\n"  # JSON is YAML


def run_production(name: str, n: int, dump: Path | None, base: Path, workers: int, slow: bool,
                   layout: str | None = None) -> dict:
    out = base / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "grid.yml").write_text(grid_yaml(n, dump))
    timerc = out / "timerc"
    timerc.write_text(f"[paths]\nproduction = {out}\nscans = {out / 'scans'}\n"
                      f"[local]\nworkers = {workers}\ndashboard = no\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    if slow:
        env.update(TIMECAL_WARM_STEPS="0", TIMECAL_CBCSIM_WRITER="uproot")
    t0 = time.time()
    proc = subprocess.run([BXRUN, "--script", "cbcsim", "--yaml", str(out / "grid.yml"), "-o", str(out / "prod"),
                           "--dask", "local", "--interval", "5", *(["--layout", layout] if layout else [])],
                          env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"{name}: BXRun failed with exit code {proc.returncode}")
    return summarise(out / "prod" / "results", t0, wall, workers)


def summarise(results: Path, t0: float, wall: float, workers: int) -> dict:
    starts, ends, step_wall, step_cpu, emulate, write, outputs, dirs = [], [], [], [], [], [], [], []
    for entry in results.iterdir():
        params = entry / "params.json"
        if entry.name.startswith(".") or not params.is_file():
            continue
        record = json.loads(params.read_text())
        (step,) = record["steps"]
        outputs.append(record["output_bytes"])
        dirs.append(sum(f.stat().st_size for f in entry.iterdir() if f.is_file()))
        starts.append(record["start"])
        ends.append(record["end"])
        step_wall.append(step["wall"])
        step_cpu.append(step["user"] + step["sys"])
        match = LOG_LINE.search((entry / "task.log").read_text())
        emulate.append(float(match.group(1)))
        write.append(float(match.group(2)))
    n = len(starts)
    span = max(ends) - min(starts)
    share = workers * span / n  # worker-seconds each task took, all included
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    emul, wr, sw = mean(emulate), mean(write), mean(step_wall)
    return {"n": n, "rate": n / span, "span": span, "wall": wall, "startup": min(starts) - t0,
            "after": t0 + wall - max(ends), "emulate": emul, "write": wr, "start": sw - emul - wr,
            "bookkeeping": share - sw, "share": share, "cpu": mean(step_cpu), "workers": workers,
            "output_bytes": mean(outputs), "dir_bytes": mean(dirs), "write_cpu": wr}


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def report(label: str, fast: dict, slow: dict) -> float:
    ratio = fast["rate"] / slow["rate"]
    print(f"[{label}]")
    for name, r in (("warm steps + fast writer", fast), ("subprocess + uproot writer", slow)):
        print(f"  {name:27s}: {r['n']:5d} tasks in {r['span']:7.1f} s = {r['rate']:6.2f} tasks/s "
              f"(BXRun wall {r['wall']:.1f} s: start-up {r['startup']:.1f} s, aggregation and exit "
              f"{r['after']:.1f} s)")
        print(f"  {'':27s}  per task (worker-seconds): start {r['start']:.3f}  emulate {r['emulate']:.3f}  "
              f"write {r['write']:.3f}  bookkeeping {r['bookkeeping']:.3f}  = {r['share']:.3f} s "
              f"(step CPU {r['cpu']:.3f} s)")
    print(f"  ratio fast / slow (tasks/s)  : {ratio:6.1f} x   (goal >= 10 x)")
    print(f"  ratio of step CPU per task   : {slow['cpu'] / fast['cpu']:6.1f} x   (independent of the "
          f"machine's load)")
    bound = fast["startup"] + FULL_GRID * fast["cpu"] / fast["workers"]
    print(f"  {FULL_GRID} tasks from step CPU alone (fast; a lower bound an idle machine approaches): "
          f"{hms(bound)}")
    for name, r in (("fast", fast), ("slow", slow)):
        total = r["startup"] + FULL_GRID / r["rate"]  # start-up once, then the measured rate
        goal = "   (goal < 1 h)" if name == "fast" else ""
        print(f"  extrapolated {FULL_GRID} tasks ({name}) : {hms(total)}"
              f"{goal}   (aggregators not included)")
    return ratio


def report_layouts(full: dict, compact: dict) -> None:
    """Issue 28: the same grid written in the full DQM layout and in the compact one."""
    print("[output layouts: the same synthetic grid, --layout full vs --layout compact]")
    for name, r in (("full (DQM, 1,002 1D hists)", full), ("compact (2D maps only)", compact)):
        print(f"  {name:27s}: {r['n']:5d} tasks in {r['span']:7.1f} s = {r['rate']:6.2f} tasks/s; "
              f"step CPU {r['cpu']:.3f} s/task (write {r['write']:.3f} s); output "
              f"{r['output_bytes'] / 1024:6.1f} kB/task, result directory {r['dir_bytes'] / 1024:6.1f} kB/task "
              f"-> {FULL_GRID} tasks: {FULL_GRID * r['dir_bytes'] / 2**30:.1f} GiB")
    print(f"  compact / full: {compact['rate'] / full['rate']:.2f} x the tasks/s, "
          f"{full['cpu'] / compact['cpu']:.2f} x less step CPU, {full['output_bytes'] / compact['output_bytes']:.1f} x "
          f"smaller outputs (goal <= 60 kB per task: {compact['output_bytes'] / 1000:.1f} kB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 fast / 20 slow tasks per grid")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per fast grid (default 1000)")
    parser.add_argument("--slow-tasks", type=int, default=None, help="tasks per slow grid (default 40)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dump-hits", type=int, default=20_000,
                        help="hits in the sim-hit dump (default: as many as the synthetic tasks "
                             "generate, so both grids do the same emulation work per task)")
    parser.add_argument("--layouts-only", action="store_true",
                        help="only the full vs compact comparison (issue 28), not the slow path's")
    args = parser.parse_args()
    n_fast = args.tasks or (300 if args.quick else 1000)
    n_slow = args.slow_tasks or (20 if args.quick else 40)
    base = REPO / ".bench" / "production"
    base.mkdir(parents=True, exist_ok=True)

    from timecal_script_cbcsim.dump import write_dump
    from timecal_script_cbcsim.synthetic import SyntheticModel, generate

    dump = base / "simhits.root"
    write_dump(dump, generate(SyntheticModel(nhits=args.dump_hits), np.random.default_rng(17)))
    print(f"cbcsim grids through BXRun --dask local, {args.workers} workers on {os.cpu_count()} cores; "
          f"synthetic hits nhits=20000, dump {args.dump_hits} hits; 501 delays; "
          f"slow path on the grids' first {n_slow} points")
    load = os.getloadavg()[0]
    print(f"load average before the runs: {load:.1f} on {os.cpu_count()} cores"
          + ("  (a busy machine: rates are lower than on an idle one)" if load > (os.cpu_count() or 1) else ""))
    full = run_production("layout-full", n_fast, None, base, args.workers, False, "full")
    compact = run_production("layout-compact", n_fast, None, base, args.workers, False, "compact")
    report_layouts(full, compact)
    if args.layouts_only:
        return 0
    ratios = []
    for label, source in (("synthetic hits", None), ("one sim-hit dump", dump)):
        fast = run_production(f"fast-{'dump' if source else 'synthetic'}", n_fast, source, base, args.workers, False)
        slow = run_production(f"slow-{'dump' if source else 'synthetic'}", n_slow, source, base, args.workers, True)
        ratios.append(report(label, fast, slow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
