"""The analysis of a big production (issue 28): the end-of-production aggregation at 3,000,
30,000 and 100,000 tasks, and plotScan at 30,000 and 100,000, side by side in one run.

The productions are synthetic but real on disk: ``results/<task>/`` with the
``params.json`` a task writes and a compact harvested file, a hard link to one of eight
files the CBC emulator wrote (so 100,000 results take a few hundred MB, and reading them
costs what reading as many distinct files of that size costs from the page cache). The grid:
threshold (N / 100 values) x thresholdsmearing (5) x tofsmearing (5) x pileup (4).

Aggregation: the aggregators (summary.parquet, the observables store) run as the driver
runs them, in a process of their own, timed and measured there: wall and CPU time, peak RSS
(``ru_maxrss``). The aggregation as it was before (the wide table in memory, a DataFrame of
dicts for the summary) runs at 3,000 tasks in the same run, for comparison (at 30,000 it
would need ~14 GB).

plotScan: the real command, on the store the aggregation wrote (reused: nothing is read
again), default figure set and formats: time to the first figure on disk, figures per
second (wall, and CPU per figure), peak RSS of plotScan's process, and the peak of the
memory of it and its drawing processes together (their PSS, sampled every 0.1 s: the forked
processes share most pages with plotScan, which a sum of RSS would count three times).

runCalibration: 100 test tasks (all tasks of one threshold, 3 delays each) against one
template task, two evaluators, found through the production's task index.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 3000,30000,100000] [--plot 30000,100000]
                                                [--formats png,pdf,root] [--quick]

The productions stay in ``.bench/scale/`` between runs (``make clean`` removes them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".bench" / "scale"
PLOTSCAN = str(Path(sys.executable).with_name("plotScan"))
AXES = {"thresholdsmearing": [0.0, 250.0, 500.0, 750.0, 1000.0], "tofsmearing": [0.0, 0.5, 1.0, 1.5, 2.0],
        "pileup": [140, 200, 250, 300]}
SEEDS = 8


def seed_files() -> list[Path]:
    """Eight compact harvested files from the emulator (2,000 synthetic hits, 501 delays)."""
    out = CACHE / "seeds"
    files = sorted(out.glob("*.root"))
    if len(files) == SEEDS:
        return files
    from timecal_core.cms.harvested_layout import COMPACT
    from timecal_core.config.parameters import complete
    from timecal_core.contract.hookspecs import TASK_PARAMETERS_ENV
    from timecal_script_cbcsim import run
    from timecal_script_cbcsim.params import PARAMETERS

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cwd = os.getcwd()
    os.chdir(out)
    try:
        for i in range(SEEDS):
            params = complete(PARAMETERS, {"threshold": 4000.0 + 500 * i, "thresholdsmearing": 100.0 * i,
                                           "nhits": 2000, "seed": i + 1}, "bench")
            os.environ[TASK_PARAMETERS_ENV] = json.dumps({"params": params, "layout": COMPACT})
            path = run.run(params)
            path.rename(out / f"seed{i}.root")
    finally:
        os.environ.pop(TASK_PARAMETERS_ENV, None)
        os.chdir(cwd)
    return sorted(out.glob("*.root"))


def production(n: int) -> Path:
    """A finished production of ``n`` tasks (reused when complete)."""
    from timecal_core.contract.plugins import get_registry
    from timecal_core.plan.grid import plan_grid

    root = CACHE / f"prod{n}"
    done = root / ".complete"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    seeds = seed_files()
    script = get_registry().script("cbcsim").item
    grid = {"threshold": [3000.0 + 10 * i for i in range(max(1, n // 100))], **AXES}
    plan = plan_grid(script, grid, root)
    results = root / "results"
    results.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, task in enumerate(plan.tasks):
        directory = results / task.dirname
        directory.mkdir()
        seed = seeds[i % len(seeds)]
        output = "BXHistScan_synthetic_harvested.root"
        os.link(seed, directory / output)
        start = 1.8e9 + i
        record = {"task_id": task.task_id, "script": "cbcsim", "params": dict(task.params), "metadata": {},
                  "output": output, "layout": "compact", "host": "bench", "worker": "bench:1", "job_id": None,
                  "start": start, "end": start + 1.5, "cpu": 0.4, "maxrss_kib": 70000,
                  "output_bytes": seed.stat().st_size,
                  "steps": [{"name": "cbcsim", "exit_code": 0, "wall": 1.2, "user": 0.3, "sys": 0.1}],
                  "software": {"timecal": "0.1.0", "python": "3.11"}}
        (directory / "params.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        (directory / "task.log").write_text("bench\n")
        if i % 5000 == 0:
            print(f"  making {n} results: {i}/{n} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    done.write_text("ok\n")
    return root


# --------------------------------------------------------------------------- children
def child_aggregate(prod: Path, scans: Path, old: bool) -> dict:
    """Runs in a fresh process: the aggregation of ``prod`` (new, or the way it was)."""
    from timecal_core.config.timerc import Timerc

    timerc = Timerc(scans / "timerc", {"paths": {"scans": str(scans)}})
    t0, c0 = time.perf_counter(), time.process_time()
    if old:
        old_aggregation(prod, scans)
    else:
        from timecal_core.driver.aggregation import aggregate_here

        lines = []
        if not aggregate_here(prod, "cbcsim", None, timerc, out=lines.append):
            raise SystemExit("\n".join(lines))
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def old_aggregation(prod: Path, scans: Path) -> None:
    """The aggregation before issue 28: every finished task as a list, the wide observables
    table built in memory (parameters on every row) and written with pandas, the summary a
    DataFrame of one dict per task."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from timecal_analysis.observables import build_table
    from timecal_core.run.tasks import finished_tasks

    tasks = finished_tasks(prod)
    table = build_table(tasks)
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), scans / "old_observables.parquet")
    rows = []
    for t in tasks:
        row = dict(t.params)
        row.update(task_id=t.task_id, directory=str(t.directory), output=str(t.output), runtime=t.runtime,
                   attempts=t.attempts)
        row.update({"prov_" + k: v for k, v in t.provenance.items()})
        rows.append(row)
    pd.DataFrame(rows).to_parquet(scans / "old_summary.parquet", index=False)


def run_child(*args: str) -> dict:
    """A fresh process of this script; it reports its own peak RSS (ru_maxrss)."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"child {args} failed: exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- plotScan
def run_plotscan(prod: Path, scans: Path, formats: str) -> dict:
    import psutil

    timerc = scans / "timerc"
    timerc.write_text(f"[paths]\nproduction = {prod.parent}\nscans = {scans}\n")
    out = scans / prod.name
    shutil.rmtree(out / "plots", ignore_errors=True)
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([PLOTSCAN, "-i", str(prod), "--formats", formats], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first, first_cpu = [None], [None]
    tree_peak = [0]
    stop = threading.Event()

    def watch():
        ps = psutil.Process(proc.pid)
        plots = out / "plots"
        while not stop.is_set():
            try:  # PSS: the forked drawing processes share most of their pages with plotScan
                pss = sum(p.memory_full_info().pss for p in [ps, *ps.children(recursive=True)])
                tree_peak[0] = max(tree_peak[0], pss)
            except psutil.Error:
                pass
            if first[0] is None and plots.is_dir() and any(plots.glob("*/*/*.png")):
                first[0] = time.perf_counter() - t0
                try:  # CPU of plotScan and its drawing processes so far
                    first_cpu[0] = sum(sum(p.cpu_times()[:2]) for p in [ps, *ps.children(recursive=True)])
                except psutil.Error:
                    pass
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"plotScan failed:\n{err[-2000:]}")
    figures = sum(1 for _ in (out / "plots").glob("*/*/*.png"))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    planned_line = next((line for line in err.splitlines() if "slice(s)" in line), "")
    return {"wall": wall, "first": first[0], "first_cpu": first_cpu[0], "figures": figures, "cpu": cpu, "main_rss": usage.ru_maxrss / 1024,
            "tree_rss": tree_peak[0] / 2**20, "choice": planned_line.removeprefix("plotScan: ")}


def run_calibration(prod: Path, scans: Path) -> dict:
    """runCalibration on production tasks: the tests are every task at one threshold (100
    tasks, 3 delays each), the template one task; each selection is looked up in the
    production's task index."""
    threshold = 3000.0 + 10 * (len(list((prod / "results").iterdir())) // 200)
    yml = scans / "calibration.yml"
    yml.write_text(f"""
big:
  test: {{production: {prod}, params: {{threshold: {threshold}}}, delays: [10, 20, 30]}}
  evaluators:
    - {{method: Binomial, template: {{production: {prod}, params: {{threshold: {threshold}, thresholdsmearing: 0,
                                                                    tofsmearing: 0, pileup: 200}}}}}}
    - {{method: Mean, template: {{production: {prod}, params: {{threshold: {threshold}, thresholdsmearing: 0,
                                                                 tofsmearing: 0, pileup: 200}}}}}}
""")
    timerc = scans / "timerc-calibration"
    timerc.write_text(f"[paths]\nproduction = {prod.parent}\ncalibration = {scans / 'calibration'}\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("runCalibration")), str(yml), "--no-plots"],
                            env={**os.environ, "TIMECAL_CONFIG": str(timerc)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"runCalibration failed:\n{out[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "rss": usage.ru_maxrss / 1024, "summary": [line for line in out.splitlines() if "bias" in line]}


def old_figure_count(n: int) -> int:
    """The figures the old default planned: every combination of the others, per scanned
    parameter, 6 observables x 2 modes x (curves, map)."""
    import math

    axes = [max(1, n // 100)] + [len(v) for v in AXES.values()]
    return sum(math.prod(axes) // a for a in axes) * 6 * 2 * 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,30000,100000", help="aggregation sizes (tasks)")
    parser.add_argument("--plot", default="30000,100000", help="plotScan sizes (tasks)")
    parser.add_argument("--formats", default="png,pdf,root")
    parser.add_argument("--quick", action="store_true", help="3,000 and 10,000 tasks only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, prod, scans = args.child
        result = child_aggregate(Path(prod), Path(scans), old=kind == "old")
        result["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    sizes = [3000, 10000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    plots = [10000] if args.quick else [int(s) for s in args.plot.split(",") if s]
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        for n in sorted(set(sizes) | set(plots)):
            prod = production(n)
            scans = tmp / f"scans{n}"
            scans.mkdir()
            new = run_child("new", str(prod), str(scans))
            old = run_child("old", str(prod), str(scans)) if n == min(sizes) else None
            plot = run_plotscan(prod, scans, args.formats) if n in plots else None
            if plot is not None:
                plot["calibration"] = run_calibration(prod, scans)
            store = scans / prod.name
            disk = sum(p.stat().st_size for p in (store / "observables.parquet", store / "tasks.parquet"))
            rows.append((n, new, old, plot, disk))
            shutil.rmtree(scans / prod.name / "plots", ignore_errors=True)
    print(f"analysis of big productions: load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores shared with other jobs "
          "(CPU time is the robust figure; wall time follows the load)")
    print("aggregation (summary.parquet + observables store), a process of its own, every file read:")
    print(f"  {'tasks':>7}  {'wall':>8}  {'CPU':>8}  {'CPU/task':>9}  {'peak RSS':>9}  {'store on disk':>13}")
    for n, new, old, _, disk in rows:
        if n not in sizes:
            continue
        print(f"  {n:>7}  {new['wall']:7.1f}s  {new['cpu']:7.1f}s  {1000 * new['cpu'] / n:7.2f}ms  "
              f"{new['rss']:6.0f} MB  {disk / 2**20:10.1f} MB")
        if old:
            print(f"  {n:>7}  {old['wall']:7.1f}s  {old['cpu']:7.1f}s  {1000 * old['cpu'] / n:7.2f}ms  "
                  f"{old['rss']:6.0f} MB  (before: the wide table in memory; goal now < 500 MB at 30,000)")
    measured = [(n, new) for n, new, *_ in rows if n in sizes]
    if len(measured) > 1:
        (n0, a), (n1, b) = measured[0], measured[-1]
        print(f"  growth {n0} -> {n1} tasks (x{n1 / n0:.1f}): CPU x{b['cpu'] / a['cpu']:.1f}, "
              f"peak RSS x{b['rss'] / a['rss']:.2f}")
    print(f"plotScan -i <production> --formats {args.formats} on the store above (reused), default figure set:")
    for n, _, _, plot, _ in rows:
        if plot is None:
            continue
        rate = plot["figures"] / plot["wall"] if plot["wall"] else 0
        first = f"{plot['first']:.1f} s" if plot["first"] is not None else "none"
        if plot.get("first_cpu") is not None:
            first += f" (CPU {plot['first_cpu']:.1f} s)"
        print(f"  {n:>7} tasks: first figure {first} (goal < 10 s), {plot['figures']} figures in "
              f"{plot['wall']:.1f} s = {rate:.1f} figures/s, CPU {1000 * plot['cpu'] / max(plot['figures'], 1):.0f} ms "
              f"per figure; peak RSS of plotScan {plot['main_rss']:.0f} MB, of it and its drawing processes "
              f"{plot['tree_rss']:.0f} MB (PSS: shared pages counted once; goal < 2 GB)")
        print(f"           {plot['choice']}; the old default would have planned {old_figure_count(n)} figures")
        cal = plot["calibration"]
        print(f"  {n:>7} tasks: runCalibration, 100 test tasks x 3 delays against one template task, two "
              f"evaluators: {cal['wall']:.1f} s wall, CPU {cal['cpu']:.1f} s, peak RSS {cal['rss']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
