"""Driver overhead: 30,000 trivial tasks through the local backend.

Figures (issues 4 and 28): peak RSS of the driver process (goal < 350 MB at 30,000 tasks)
and its throughput in tasks/s relative to a bare ``client.map`` of the same function on the
same backend in the same run (goal >= 0.9); ``--tasks 100000`` for the 100,000-task figures. Both use TLS with mutual authentication, as every backend does
(issue 18); the same pair is also run on a plain ``tcp://`` LocalCluster and printed beside
them, so the cost of TLS itself is visible. Both sides run ``execute_task`` on the same kind of task (a script
with no step whose finalize writes the output: the task is all timecal bookkeeping, no
subprocess), each in a fresh child process so that peak RSS is the driver's own. Times run
from starting the cluster to having shut it down after the last task (the driver's
end-of-production aggregation is timed separately).

The trivial script is registered the way an installed plugin is (a ``.dist-info`` with a
``timecal`` entry point), written to a temporary directory put on ``PYTHONPATH`` for the
Dask workers, so nothing has to be pip-installed.

    .venv/bin/python benchmarks/bench_driver.py [--quick] [--tasks N] [--workers W] [--repeat N] [--no-tls-off]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PLUGIN_MODULE = '''
"""A production script with no step: the output is written by finalize (benchmarks only)."""
from timecal_core.contract.hookspecs import Parameter, ProductionScript, TaskPlan, hookimpl


def _finalize(workdir):
    (workdir / "out.txt").write_text("ok\\n")


def _plan(request):
    return TaskPlan(steps=(), output="out.txt", finalize=_finalize)


@hookimpl
def timecal_scripts():
    yield ProductionScript(name="benchnoop", parameters=(Parameter("index", "int", 0),), plan=_plan)
'''


def write_plugin(site: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / "timecal_benchnoop.py").write_text(PLUGIN_MODULE)
    info = site / "timecal_benchnoop-0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: timecal-benchnoop\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[timecal]\nbenchnoop = timecal_benchnoop\n")


def _plan(out: Path, n: int):
    from timecal_core.plan.grid import plan_grid
    from timecal_core.contract.plugins import get_registry

    script = get_registry().script("benchnoop").item
    return plan_grid(script, {"index": list(range(n))}, out)


class PlainLocal:
    """The local backend as it was before TLS (``tcp://``, no authentication): for the
    TLS-off figures only."""

    @staticmethod
    def start(request):
        from distributed import LocalCluster

        from timecal_core.contract.running_cluster import RunningCluster

        cluster = LocalCluster(n_workers=int(request.settings["workers"]), threads_per_worker=1,
                               processes=True, host="127.0.0.1", protocol="tcp://", scheduler_port=0,
                               dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        return RunningCluster(cluster, "local-plain")


def _backend(tls: bool):
    from timecal_core.contract.plugins import get_registry

    return get_registry().backend("local").item if tls else PlainLocal


def child_baseline(out: Path, n: int, workers: int, tls: bool) -> dict:
    from distributed import Client, wait

    from timecal_core.contract.hookspecs import BackendRequest
    from timecal_core.run.tasks import execute_task

    plan = _plan(out, n)
    t0 = time.perf_counter()
    running = _backend(tls).start(BackendRequest({"workers": str(workers), "dashboard": "no"}, out))
    assert running.cluster.scheduler_address.startswith("tls://" if tls else "tcp://")
    with Client(running.cluster, security=running.security) as client:
        futures = client.map(execute_task, plan.tasks, production_dir=str(out), cmssw_init="",
                             cmssw_dir=None, pure=False)
        wait(futures)
        errors = sum(f.status != "finished" for f in futures)
        del futures
    running.close()  # the driver's time also includes shutting the cluster down
    return {"seconds": time.perf_counter() - t0, "errors": errors}


def child_driver(out: Path, n: int, workers: int, tls: bool) -> dict:
    from timecal_core.driver import production as driver
    from timecal_core.config.timerc import Timerc
    from timecal_core.run.engine import ProductionOptions
    from timecal_core.contract.hookspecs import BackendRequest

    plan = _plan(out, n)
    stamps = {}
    real_finish = driver._finish

    def timed_finish(*args, **kwargs):
        stamps["executed"] = time.perf_counter()
        return real_finish(*args, **kwargs)

    driver._finish = timed_finish
    timerc = Timerc(out / "timerc", {"paths": {"scans": str(out / "scans")}})
    t0 = time.perf_counter()
    code = driver.run_production(
        plan, _backend(tls),
        BackendRequest({"workers": str(workers), "dashboard": "no"}, out),
        ProductionOptions(interval=10), timerc)
    end = time.perf_counter()
    return {"seconds": stamps["executed"] - t0, "aggregation": end - stamps["executed"],
            "exit_code": code}


def run_child(kind: str, out: Path, n: int, workers: int, site: Path, tls: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--dir", str(out),
                           "--tasks", str(n), "--workers", str(workers)] + ([] if tls else ["--tls-off"]),
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{kind} run failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 tasks instead of 30,000")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate N runs of each and keep the best (noisy shared machines)")
    parser.add_argument("--no-tls-off", action="store_true",
                        help="skip the two runs without TLS (the figures printed beside)")
    parser.add_argument("--tls-off", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("baseline", "driver"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.tasks or (2000 if args.quick else 30000)

    if args.child:
        with open(os.devnull, "w") as quiet:  # keep stdout for the JSON result only
            saved, sys.stdout = sys.stdout, quiet
            try:
                result = (child_baseline if args.child == "baseline" else child_driver)(
                    Path(args.dir), n, args.workers, tls=not args.tls_off)
            finally:
                sys.stdout = saved
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # the largest process it waited for: a Dask worker, or the aggregation's own process
        result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        result["cpu"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench_driver_") as tmp:
        tmp = Path(tmp)
        write_plugin(tmp / "site")
        print(f"{n} trivial tasks on the local backend, {args.workers} workers"
              + (f", best of {args.repeat} alternating runs" if args.repeat > 1 else ""))
        modes = (True,) if args.no_tls_off else (True, False)
        runs: dict[tuple[str, bool], list[dict]] = {(k, t): [] for k in ("baseline", "driver") for t in modes}
        for i in range(args.repeat):
            for kind, tls in runs:
                runs[kind, tls].append(run_child(kind, tmp / f"{kind}{'' if tls else '-plain'}{i}", n,
                                                 args.workers, tmp / "site", tls))
        best = {key: min(results, key=lambda r: r["seconds"]) for key, results in runs.items()}
    rate = {key: n / r["seconds"] for key, r in best.items()}

    def side(kind: str) -> str:
        if (kind, False) not in best:
            return ""
        return f"   | TLS off: {best[kind, False]['seconds']:7.1f} s  {rate[kind, False]:7.1f} tasks/s"

    base, drv = best["baseline", True], best["driver", True]
    print(f"load average {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores (shared: the "
          "tasks/s follow the load, compare the two lines of one run; CPU is the process's own)")
    print(f"bare client.map, TLS : {base['seconds']:7.1f} s  {rate['baseline', True]:7.1f} tasks/s  "
          f"peak RSS {base['peak_rss_mb']:6.0f} MB  CPU {base['cpu']:6.1f} s  ({base['errors']} errors)"
          + side("baseline"))
    print(f"timecal driver, TLS  : {drv['seconds']:7.1f} s  {rate['driver', True]:7.1f} tasks/s  "
          f"peak RSS {drv['peak_rss_mb']:6.0f} MB  CPU {drv['cpu']:6.1f} s  (exit {drv['exit_code']}; "
          f"end-of-production aggregation {drv['aggregation']:.1f} s more, in a process of its own)"
          + side("driver"))
    print(f"driver peak RSS: {drv['peak_rss_mb']:.0f} MB (goal < 350 MB); its largest child (a Dask "
          f"worker or the aggregation): {drv['children_rss_mb']:.0f} MB")
    print(f"throughput ratio driver / bare client.map, both with TLS: "
          f"{rate['driver', True] / rate['baseline', True]:.2f} (goal >= 0.9)")
    if ("driver", False) in rate:
        print(f"TLS off (plain tcp://, for comparison): ratio driver / bare client.map "
              f"{rate['driver', False] / rate['baseline', False]:.2f}; TLS costs the bare client.map "
              f"{100 * (1 - rate['baseline', True] / rate['baseline', False]):.0f}% and the driver "
              f"{100 * (1 - rate['driver', True] / rate['driver', False]):.0f}% of their throughput")


if __name__ == "__main__":
    main()
