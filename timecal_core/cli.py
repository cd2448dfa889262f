"""``BXRun``: run a production script once in the foreground, or over a YAML grid on a Dask
backend, with the seed tool's flags and habits (``-o`` under ``[paths] production``,
``infiles/`` + ``results/``, the grid copied once and reused on reruns)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from .config import load_timerc, timerc_location, write_default_timerc
from .errors import UserError
from .exits import run_cli
from .grid import Plan, plan_grid, production_dir
from .parameters import parse_assignments
from .yamlconf import load_yaml, parse_custom

INFILES = "infiles"
GRID_COPY = "config.yml"
PRODUCTION_RECORD = "production.json"
DEFAULT_DATA_DIR = "~/.local/share/timecal"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="BXRun",
        description="Run a timecal production script once (--run) or over a YAML grid (--yaml) "
                    "on a Dask backend (--dask).",
        epilog="Examples: BXRun --script cbcsim --run threshold=5000 -o test1 | "
               "BXRun --script cbcsim --yaml scan.yml --dask local -o scan1 | "
               "BXRun --status -o scan1",
    )
    p.add_argument("--script", help="production script: plugin name or cfg file name "
                                    "(e.g. cbcsim, PUCalibration_cfg.py); see --plugins")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--run", nargs="+", metavar="K=V", help="run one parameter set in the foreground")
    what.add_argument("--yaml", help="grid YAML: parameter -> value or list (cartesian product)")
    what.add_argument("--status", action="store_true", help="print the production's state (needs -o)")
    what.add_argument("--rebuild-ledger", action="store_true",
                      help="rebuild the production ledger from the results on disk (needs -o)")
    what.add_argument("--attach", action="store_true",
                      help="open the monitor of the production's running driver (needs -o)")
    what.add_argument("--plugins", action="store_true", help="list installed backends, scripts, "
                                                             "aggregators and evaluators")
    what.add_argument("--init", nargs="?", const=DEFAULT_DATA_DIR, metavar="DIR",
                      help=f"write a commented timerc with data paths under DIR (default {DEFAULT_DATA_DIR})")
    p.add_argument("--dask", default="local", metavar="BACKEND", help="execution backend (default: local)")
    p.add_argument("-o", "--output", help="production directory (relative: under timerc [paths] production)")
    p.add_argument("--custom", nargs="+", metavar="K=V", help="fill {K} placeholders of the YAML")
    p.add_argument("--HSFile", help="text file listing the hard-scattering GEN-SIM files (sets HSfile)")
    p.add_argument("--PUFile", help="text file listing the pile-up GEN-SIM files (sets PUfile)")
    p.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                   help="seconds between status updates and retries (default 60)")
    p.add_argument("--max-retries", type=int, default=3, metavar="N",
                   help="attempts per task before it is failed for good (default 3)")
    p.add_argument("--detach", action="store_true",
                   help="run the driver in the background, on its own: logging out changes "
                        "nothing (log: OUT/logs/driver.log; come back with BXRun --attach -o OUT)")
    p.add_argument("--debug", action="store_true",
                   help="plan only, submit nothing, open a Python shell holding the plan")
    p.add_argument("-v", "--verbose", action="store_true", help="more output; tracebacks on errors")
    p.add_argument("--version", action="version", version=f"timecal {__version__}")
    return p


def _registry():
    from .plugins import get_registry

    return get_registry()


def _require_output(args) -> None:
    if not args.output:
        raise UserError("-o/--output is required: the production directory "
                        "(absolute, or relative to timerc [paths] production)")


def _resolve_output(args, timerc) -> Path:
    _require_output(args)
    return production_dir(args.output, timerc.optional_path("production"))


def _file_overrides(args, script) -> dict[str, str]:
    out = {}
    names = {p.name for p in script.parameters}
    for flag, name in (("HSFile", "HSfile"), ("PUFile", "PUfile")):
        value = getattr(args, flag)
        if value is None:
            continue
        if name not in names:
            raise UserError(f"--{flag}: script '{script.name}' has no parameter {name}")
        out[name] = value
    return out


def _grid_source(args, out: Path) -> tuple[dict, str, str | None]:
    """The grid, where it comes from, and the script recorded for this production."""
    copy = out / INFILES / GRID_COPY
    record = out / INFILES / PRODUCTION_RECORD
    recorded_script = None
    if record.is_file():
        recorded_script = json.loads(record.read_text()).get("script")
    if copy.is_file():
        if args.yaml:
            print(f"BXRun: note: --yaml {args.yaml} is ignored: this production already has its grid "
                  f"in {copy}; edit that file to change the scan", file=sys.stderr)
        return load_yaml(copy, parse_custom(args.custom)), str(copy), recorded_script
    if not args.yaml:
        raise UserError(f"{out} has no {INFILES}/{GRID_COPY} yet: give the grid with --yaml FILE")
    return load_yaml(args.yaml, parse_custom(args.custom)), args.yaml, recorded_script


def _print_plan(plan: Plan, source: str) -> None:
    n, done = len(plan.tasks), len(plan.done)
    print(f"BXRun: {plan.script.name}: {n} task{'s' if n != 1 else ''} from {source}: "
          f"{n - done} new, {done} already done; output {plan.production_dir}")


def _debug_shell(namespace: dict) -> None:
    import code

    banner = ("BXRun --debug: nothing was submitted. Names: " + ", ".join(sorted(namespace))
              + ". Exit with exit() or Ctrl-D.")
    code.interact(banner=banner, local=namespace, exitmsg="")


def cmd_run(args, timerc) -> int:
    from .lock import ProductionLock
    from .tasks import TaskFailed, execute_task, log_path

    script = _registry().script(args.script).item
    given = parse_assignments(args.run, source="--run")
    given.update(_file_overrides(args, script))
    out = _resolve_output(args, timerc)
    plan = plan_grid(script, given, out, source="--run")
    spec = plan.tasks[0]
    if args.debug:
        _debug_shell({"plan": plan, "task": spec, "timerc": timerc})
        return 0
    if spec.task_id in plan.done:
        print(f"BXRun: already complete: {plan.results_dir / spec.dirname}")
        return 0
    if script.preflight is not None:
        script.preflight(timerc)
    cmssw = timerc.optional_path("cmssw")
    with ProductionLock(out):
        print(f"BXRun: running {script.name} {spec.task_id} in the foreground "
              f"(log: {plan.results_dir / spec.dirname / 'task.log'} once it succeeds)")
        try:
            result = execute_task(spec, str(out), timerc.cmssw_init, str(cmssw) if cmssw else None)
        except TaskFailed as exc:
            print(f"BXRun: {exc}", file=sys.stderr)
            print("--- last log lines ---\n" + exc.log_tail.rstrip(), file=sys.stderr)
            where = log_path(out, spec.dirname)
            if where is not None:
                print(f"BXRun: the whole log: {where}", file=sys.stderr)
            return 1
    print(f"BXRun: done in {result.end - result.start:.1f} s: {result.output}")
    return 0


def cmd_grid(args, timerc) -> int:
    from .hookspecs import BackendRequest
    from .tasks import clear_stale_workdirs

    registry = _registry()
    out = _resolve_output(args, timerc)
    grid, source, recorded_script = _grid_source(args, out)
    script_name = args.script or recorded_script
    if not script_name:
        raise UserError("--script is required (e.g. --script cbcsim); see BXRun --plugins")
    script = registry.script(script_name).item
    if recorded_script and recorded_script != script.name:
        raise UserError(f"{out} was produced with --script {recorded_script}, not {script.name}; "
                        f"use another -o for a different script")
    if not isinstance(grid, dict):
        raise UserError(f"{source}: expected a mapping 'parameter: value or [values]'")
    overrides = _file_overrides(args, script)
    grid = {**grid, **overrides}
    registry.backend(args.dask)  # an unknown backend is an error before anything is written
    plan = plan_grid(script, grid, out, source=source)
    if script.preflight is not None and not args.debug:
        script.preflight(timerc)
    _print_plan(plan, source)
    if args.debug:
        _debug_shell({"plan": plan, "grid": grid, "script": script, "timerc": timerc,
                      "registry": registry})
        return 0
    from .engine import ProductionOptions
    from .lock import ProductionLock
    from .production import run_production

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.detach or interactive:
        # The driver runs on its own (new session, no terminal); in a terminal the monitor
        # attaches to it at once, and closing the terminal changes nothing.
        code = start_detached(out, args.argv, quiet=interactive and not args.detach)
        if code is not None or args.detach:
            return code or 0
        return cmd_attach(out)
    with ProductionLock(out):
        infiles = out / INFILES
        infiles.mkdir(parents=True, exist_ok=True)
        if not (infiles / GRID_COPY).is_file():
            shutil.copyfile(args.yaml, infiles / GRID_COPY)
        if not (infiles / PRODUCTION_RECORD).is_file():
            (infiles / PRODUCTION_RECORD).write_text(json.dumps(
                {"script": script.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "timecal": __version__, "overrides": overrides}, indent=1))
        clear_stale_workdirs(out)
        if not plan.pending:
            print("BXRun: every task is already done.")
        request = BackendRequest(settings=timerc.section(args.dask), output_dir=out, verbose=args.verbose)
        options = ProductionOptions(interactive=False, interval=args.interval,
                                    max_retries=args.max_retries, verbose=args.verbose)
        return run_production(plan, registry.backend(args.dask).item, request, options, timerc)


DETACHED_WAIT = 120.0  # s a detached driver may take to plan, lock and open its channel


def start_detached(out: Path, argv: list[str], quiet: bool = False) -> int | None:
    """Run this same BXRun command as a driver of its own (new session, no terminal,
    output to OUT/logs/driver.log). None once it serves its control channel; its exit code
    if it ended at once (nothing left to do)."""
    import subprocess

    from .controlsocket import driver_alive, read_record
    from .driverlog import driver_log_path

    log = driver_log_path(out)
    log.parent.mkdir(parents=True, exist_ok=True)
    before = (read_record(out) or {}).get("started")
    offset = log.stat().st_size if log.exists() else 0
    child_argv = [a for a in argv if a != "--detach"]
    with open(log, "ab") as sink:
        child = subprocess.Popen([sys.executable, "-m", "timecal_core.cli", *child_argv],
                                 stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True)
    deadline = time.monotonic() + DETACHED_WAIT
    while time.monotonic() < deadline:
        record = read_record(out)
        if record and record.get("pid") == child.pid and record.get("started") != before \
                and driver_alive(record):
            if quiet:
                print(f"BXRun: the driver runs on its own (PID {child.pid}, log {log}); "
                      "'detach' or closing this terminal leaves it running")
            else:
                print(f"BXRun: driver running on its own (PID {child.pid}); log {log}")
                print(f"BXRun: follow it with: timecal attach {out}   (or BXRun --attach -o {out})")
            return None
        code = child.poll()
        if code is not None:
            with open(log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace").rstrip()
            if code == 0:  # nothing was left to do: it finished at once
                print(text)
                return 0
            print("\n".join(text.splitlines()[-8:]), file=sys.stderr)
            raise UserError(f"the detached driver ended at once (exit {code}); its log: {log}")
        time.sleep(0.2)
    raise UserError(f"the detached driver (PID {child.pid}) did not open its control channel "
                    f"within {DETACHED_WAIT:.0f} s; its log: {log}")


def cmd_attach(out: Path) -> int:
    from .controlsocket import SocketChannel, describe_driver, driver_alive, read_record
    from .shell import ShellMonitor

    record = read_record(out)
    if not driver_alive(record):
        raise UserError(f"{out}: {describe_driver(record)}; resume it with: "
                        f"BXRun -o {out} --detach")
    channel = SocketChannel(record["socket"])
    try:
        return ShellMonitor()(channel)
    finally:
        channel.close()


def cmd_status(args, timerc, rebuild: bool) -> int:
    from . import production

    out = _resolve_output(args, timerc)
    if not out.is_dir():
        raise UserError(f"-o {args.output}: no production at {out}")
    if not rebuild:
        return production.print_status(out)
    record = out / INFILES / PRODUCTION_RECORD
    copy = out / INFILES / GRID_COPY
    if not copy.is_file():
        raise UserError(f"{out}: no {INFILES}/{GRID_COPY}; cannot know the planned tasks")
    script_name = args.script or (json.loads(record.read_text()).get("script") if record.is_file() else None)
    if not script_name:
        raise UserError(f"{out}: no {INFILES}/{PRODUCTION_RECORD}; give --script")
    script = _registry().script(script_name).item
    grid = load_yaml(copy, parse_custom(args.custom))
    if record.is_file():
        grid = {**grid, **json.loads(record.read_text()).get("overrides", {})}
    from .lock import ProductionLock

    with ProductionLock(out):
        return production.rebuild_ledger(plan_grid(script, grid, out, source=str(copy)))


def _dispatch(args) -> int:
    if args.plugins:
        from .plugins import describe

        print(describe(_registry()))
        return 0
    if args.init is not None:
        target = timerc_location()
        write_default_timerc(target, Path(args.init))
        print(f"BXRun: wrote {target}; data paths under {Path(args.init).expanduser()}. "
              f"Edit [paths] cmssw and [cmssw] init before running CMSSW scripts.")
        return 0
    if args.interval <= 0:
        raise UserError(f"--interval {args.interval:g}: expected a positive number of seconds")
    if args.max_retries < 1:
        raise UserError(f"--max-retries {args.max_retries}: expected at least 1 attempt")
    timerc = load_timerc()
    if args.attach:
        return cmd_attach(_resolve_output(args, timerc))
    if args.status or args.rebuild_ledger:
        return cmd_status(args, timerc, rebuild=args.rebuild_ledger)
    if args.run:
        if not args.script:
            raise UserError("--run needs --script (e.g. --script cbcsim); see BXRun --plugins")
        return cmd_run(args, timerc)
    if args.yaml or args.output:
        return cmd_grid(args, timerc)
    raise UserError("nothing to do: give --run K=V..., --yaml FILE -o DIR, --status -o DIR, "
                    "--plugins or --init (see BXRun -h)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not args.verbose:
        warnings.simplefilter("default")
        warnings.formatwarning = lambda msg, cat, *a, **k: f"BXRun: warning: {msg}\n"
    return run_cli("BXRun", lambda: _dispatch(args), verbose=args.verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
