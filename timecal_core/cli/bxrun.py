"""``BXRun``: run a production script once in the foreground, or over a YAML grid on a Dask
backend, with the seed tool's flags and habits (``-o`` under ``[paths] production``,
``infiles/`` + ``results/``, the grid copied once and reused on reruns)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

from .. import __version__
from ..config.parameters import parse_assignments
from ..config.timerc import load_timerc, timerc_location, write_default_timerc
from ..config.yamlfiles import load_yaml, parse_custom
from ..contract.errors import UserError
from ..ledger.failure_causes import retry_policy
from ..ledger.sqlite_ledger import check_whole
from ..plan.completion import move_aside
from ..plan.grid import Plan, plan_grid, production_dir
from ..plan.pilot import DEFAULT_PILOT_TASKS
from ..run.cmsrun_probe import check_cmsrun
from ..textformat import format_bytes
from ..contract.trust import owned_dir, write_atomically
from . import vocabulary
from .command_errors import run_cli, writing
from .detach import cmd_attach, start_detached
from .output_layout import choose_layout, record_layout
from .production_dir import INFILES, check_production, make_production

GRID_COPY = "config.yml"
PRODUCTION_RECORD = "production.json"
DEFAULT_DATA_DIR = "~/.local/share/timecal"
# Above this many tasks BXRun asks before planning a production (a 1,000,000-point grid
# took a 1.4 GB driver and a 450 MB ledger, with an ETA of 15 days).
CONFIRM_TASKS = 100_000
DRIVER_BYTES_PER_TASK = 1_400  # measured: 1.4 GB for 1,000,000 tasks
LEDGER_OVERHEAD_BYTES = 150  # per row, besides its parameters and directory name


class _HelpWithParameters(argparse.Action):
    """``-h``: the usual help; with ``--script NAME`` (before or after it) also that script's
    parameters, so that what a grid may contain is one command away."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        name = _script_in(getattr(parser, "given_argv", None) or [])
        if name is None:
            parser.print_help()
            parser.exit()

        def show() -> int:
            from ..config.parameter_table import parameter_table

            script = _registry().script(name).item  # unknown: the one-line error, exit 2
            parser.print_help()
            print("\n" + parameter_table(script))
            return 0

        parser.exit(run_cli("BXRun", show))


def _script_in(argv: list[str]) -> str | None:
    """The value of ``--script`` in ``argv`` (``--script X``, ``--script=X``, abbreviated)."""
    for i, a in enumerate(argv):
        flag, eq, value = a.partition("=")
        if len(flag) >= 4 and "--script".startswith(flag):
            if eq:
                return value
            if i + 1 < len(argv):
                return argv[i + 1]
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="BXRun",
        description="Run a timecal production script once (--run) or over a YAML grid (--yaml) "
                    "on a Dask backend (--dask).",
        epilog="Examples: BXRun --script cbcsim --help (its parameters) | "
               "BXRun --script cbcsim --run threshold=5000 -o test1 | "
               "BXRun --script cbcsim --yaml scan.yml --dask local -o scan1 --pilot (measure 5 "
               "tasks, extrapolate, ask before the rest) | "
               "BXRun --status -o scan1",
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_HelpWithParameters,
                   help="show this help and exit; with --script NAME also the script's parameters "
                        "(type, default, unit, allowed values)")
    p.add_argument("--script", help="production script: plugin name or cfg file name "
                                    "(e.g. cbcsim, PUCalibration_cfg.py); see --plugins, and "
                                    "--script NAME --help for its parameters")
    what = p.add_mutually_exclusive_group()
    vocabulary.add_list(what, "--run", metavar="KEY=VALUE", help="run one parameter set in the foreground")
    vocabulary.add(what, "--yaml", "the grid, parameter -> value or list (cartesian product)", metavar="FILE")
    what.add_argument("--status", action="store_true", help="print the production's state (needs -o)")
    what.add_argument("--rebuild-ledger", action="store_true",
                      help="rebuild the production ledger from the results on disk (needs -o)")
    what.add_argument("--attach", action="store_true",
                      help="open the monitor of the production's running driver (needs -o)")
    what.add_argument("--plugins", action="store_true", help="list installed backends, scripts, "
                                                             "aggregators and evaluators")
    what.add_argument("--init", nargs="?", const=DEFAULT_DATA_DIR, metavar="DIR",
                      help=f"write a commented timerc with data paths under DIR (default {DEFAULT_DATA_DIR})")
    vocabulary.add_list(p, "--grid", metavar="X Y [FILTER]",
                        help="with --status: the tasks as a map over parameters X and Y (a filter such "
                        "as threshold>=8000 may follow)")
    p.add_argument("--metric", choices=("rss", "runtime", "cpu", "failed"),
                   help="with --status --grid: the map of a resource instead of the states")
    vocabulary.add(p, "--dask", "an installed backend (local, slurm, htcondor...) whose Dask cluster "
                                "runs the tasks (default: local)", default="local", metavar="BACKEND")
    vocabulary.add(p, "-o", "the production directory (relative: under timerc [paths] production); "
                            "also the production --status, --attach and --rebuild-ledger look at",
                   metavar="PRODUCTION")
    vocabulary.add(p, "--custom", metavar="KEY=VALUE")
    p.add_argument("--HSFile", help="text file listing the hard-scattering GEN-SIM files (sets HSfile)")
    p.add_argument("--PUFile", help="text file listing the pile-up GEN-SIM files (sets PUfile)")
    vocabulary.add(p, "--interval", "default 60", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--max-retries", type=int, default=3, metavar="N",
                   help="attempts per task before it is failed for good (default 3); timerc "
                        "[retry] may set them per failure cause: oom, walltime, node, signal, "
                        "exit, task, and same_exit (identical failures in a row that stop "
                        "retrying, default 2)")
    p.add_argument("--pilot", nargs="?", type=int, const=DEFAULT_PILOT_TASKS, metavar="N",
                   help=f"first run N tasks (default {DEFAULT_PILOT_TASKS}) spanning the grid (the "
                        "corners and centre of the parameters that change the work, always the "
                        "largest) on --dask, print what each took and extrapolate CPU-hours, wall "
                        "time, disk, memory and walltime requests; then ask whether to launch the "
                        "rest (their results count as done)")
    p.add_argument("--layout", metavar="full|compact",
                   help="output files: 'full', the DQM harvest (the 2D maps and 1,002 1D histograms, "
                        "~570 kB per emulator task; what scripts reading the DQM files need), or "
                        "'compact' (the 2D maps, Info and the parameters, ~50 kB: all plotScan, "
                        "runCalibration and the aggregators read); default: the production's, "
                        "else timerc [production] layout, else full. Recorded in params.json")
    p.add_argument("--yes", action="store_true",
                   help=f"plan a grid of more than {CONFIRM_TASKS:,} tasks without asking; after "
                        "--pilot, launch the rest without asking")
    p.add_argument("--detach", action="store_true",
                   help="run the driver in the background, on its own: logging out changes "
                        "nothing (log: OUT/logs/driver.log; come back with BXRun --attach -o OUT)")
    p.add_argument("--debug", action="store_true",
                   help="plan only, submit nothing, open a Python shell holding the plan")
    vocabulary.add_standard(p)
    return p


def _registry():
    from ..contract.plugins import get_registry

    return get_registry()


def _require_output(args) -> None:
    if not args.output:
        raise UserError("-o/--output is required: the production directory "
                        "(absolute, or relative to timerc [paths] production)")


def _resolve_output(args, timerc, writing: bool = True) -> Path:
    """The production directory of ``-o``; when this command will write in it, checked
    first (:func:`.production_dir.check_production`)."""
    _require_output(args)
    out = production_dir(args.output, timerc.optional_path("production"))
    if writing:
        check_production(out, f"-o {args.output}")
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {args.output}: {out} is a file, not a production directory; "
                        f"give a directory (new or existing)")
    return out


def _confirm_size(args, n: int, first: dict) -> None:
    """A word before a huge grid: its ledger and driver memory, and a yes (asked before the
    points are expanded, so a refusal costs nothing)."""
    if n <= CONFIRM_TASKS or args.yes:
        return
    params = json.dumps(first, sort_keys=True)
    row = 2 * len(params) + LEDGER_OVERHEAD_BYTES  # the parameters, the directory name (shorter)
    what = (f"{n:,} tasks (more than {CONFIRM_TASKS:,}): the ledger will take about "
            f"{format_bytes(n * row)} on disk and the driver about {format_bytes(n * DRIVER_BYTES_PER_TASK)} of memory")
    if sys.stdin.isatty() and sys.stdout.isatty():
        try:
            answer = input(f"BXRun: {what}. Continue? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return
        raise UserError(f"{what}; not confirmed, nothing written")
    raise UserError(f"{what}; rerun with --yes to confirm (or split the grid)")


def _report_found(plan: Plan) -> None:
    for line in plan.found.report():
        print(f"BXRun: {line}")


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


def _read_record(out: Path) -> dict:
    record = out / INFILES / PRODUCTION_RECORD
    if not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{record}: unreadable ({exc}); restore it, or remove it and give --script") from None
    return data if isinstance(data, dict) else {}


def _grid_source(args, out: Path) -> tuple[dict, str, str | None, Path | None]:
    """The grid, where it comes from, the script recorded for this production, and the
    directory its relative paths are relative to (where the production was first planned,
    so that a rerun from elsewhere plans the same tasks)."""
    copy = out / INFILES / GRID_COPY
    record = _read_record(out)
    recorded_script = record.get("script")
    if copy.is_file():
        if args.yaml:
            print(f"BXRun: note: --yaml {args.yaml} is ignored: this production already has its grid "
                  f"in {copy}; edit that file to change the scan", file=sys.stderr)
        base = Path(record["cwd"]) if record.get("cwd") else None
        return load_yaml(copy, parse_custom(args.custom)), str(copy), recorded_script, base
    if not args.yaml:
        raise UserError(f"{out} has no {INFILES}/{GRID_COPY} yet: give the grid with --yaml FILE")
    return load_yaml(args.yaml, parse_custom(args.custom)), args.yaml, recorded_script, None


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
    from ..run.lock import ProductionLock
    from ..run.tasks import TaskFailed, execute_task, log_path

    script = _registry().script(args.script).item
    given = parse_assignments(args.run, source="--run")
    given.update(_file_overrides(args, script))
    out = _resolve_output(args, timerc)
    layout = choose_layout(args.layout, None, timerc, script)
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
    if script.cmssw:
        check_cmsrun(timerc)
    # other --run tasks may share -o: only what claims this task is reported and moved aside
    plan.found = plan.found.only(spec.task_id)
    _report_found(plan)
    cmssw = timerc.optional_path("cmssw")
    with ExitStack() as stack:
        with writing(f"-o {args.output}", out):
            make_production(out)
            stack.enter_context(ProductionLock(out))
            move_aside(plan.results_dir, plan.found.to_move)
        print(f"BXRun: running {script.name} {spec.task_id} in the foreground "
              f"(log: {plan.results_dir / spec.dirname / 'task.log'} once it succeeds)")
        try:
            result = execute_task(spec, str(out), timerc.cmssw_init, str(cmssw) if cmssw else None,
                                  layout)
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
    """Plan, check and ask everything first; only then lock and write (infiles, ledger,
    cluster). A refused value or set-up leaves no trace."""
    registry = _registry()
    out = _resolve_output(args, timerc)
    grid, source, recorded_script, base = _grid_source(args, out)
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
    choose_layout(args.layout, _read_record(out).get("layout"), timerc, script)  # a wrong one: refused now
    backend = registry.backend(args.dask).item  # unknown backend: error before anything is written
    if backend.check is not None and not args.debug:  # its timerc section too
        backend.check(timerc.section(args.dask), out)
    from ..control.unix_socket import check_socket_place
    from ..driver.notify import SECTION as NOTIFY
    from ..driver.notify import Notifier

    # a wrong timerc [retry] or [notify] is refused before anything is written (the driver
    # reads them again), as a runtime directory the driver's socket could not trust
    retry_policy(timerc.section("retry"), args.max_retries, where=str(timerc.path))
    Notifier(timerc.section(NOTIFY), out, note=lambda _line: None)
    check_socket_place(out)
    # --debug is asked too: the plan it holds is what takes the memory
    plan = plan_grid(script, grid, out, source=source, base=base,
                     confirm=lambda n, first: _confirm_size(args, n, first))
    if not args.debug:
        if script.preflight is not None:
            script.preflight(timerc)
        if script.cmssw:
            check_cmsrun(timerc)
        check_whole(out)  # a damaged ledger: the line --status gives, before anything runs
    _print_plan(plan, source)
    _report_found(plan)
    if args.debug:
        _debug_shell({"plan": plan, "grid": grid, "script": script, "timerc": timerc,
                      "registry": registry})
        return 0
    if args.pilot is not None:
        return cmd_pilot(args, timerc, plan, backend, overrides)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.detach or interactive:
        # The driver runs on its own (new session, no terminal); in a terminal the monitor
        # attaches to it at once, and closing the terminal changes nothing. Everything was
        # checked and asked above: the driver replans without asking again (--yes).
        child_argv = args.argv + ([] if "--yes" in args.argv else ["--yes"])
        with writing(f"-o {args.output}", out):
            code = start_detached(out, child_argv, quiet=interactive and not args.detach)
        if code is not None or args.detach:
            return code or 0
        return cmd_attach(out)
    return _run_here(args, timerc, plan, backend, overrides)


def _run_here(args, timerc, plan: Plan, backend, overrides: dict, pilot: bool = False) -> int:
    """The driver in this process: lock, write infiles, reconcile, run ``plan`` (the whole
    grid, or the pilot's tasks only) to its end."""
    from ..run.engine import ProductionOptions
    from ..contract.hookspecs import BackendRequest
    from ..run.lock import ProductionLock
    from ..driver.production import run_production
    from ..plan.completion import RESULTS
    from ..plan.grid import TMP
    from ..run.tasks import clear_stale_workdirs

    out = plan.production_dir
    script = plan.script
    policy = retry_policy(timerc.section("retry"), args.max_retries, where=str(timerc.path))
    # the file overrides as planned: absolute paths, so a rerun from elsewhere finds them
    overrides = {name: plan.tasks[0].params[name] for name in overrides}
    with ExitStack() as stack:
        with writing(f"-o {args.output}", out):
            make_production(out)
            stack.enter_context(ProductionLock(out))
            infiles = owned_dir(out / INFILES)
            # written whole, then renamed: a full disk never leaves a half-written grid copy
            # that a rerun would take for the production's grid
            if not (infiles / GRID_COPY).is_file():
                write_atomically(infiles / GRID_COPY, Path(args.yaml).read_bytes())
            record = _read_record(out) if (infiles / PRODUCTION_RECORD).is_file() else None
            layout = record_layout(infiles / PRODUCTION_RECORD, record, args.layout, timerc, script,
                                   {"script": script.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                                    "timecal": __version__, "overrides": overrides, "cwd": os.getcwd()})
            move_aside(plan.results_dir, plan.found.to_move)
            clear_stale_workdirs(out)
            owned_dir(owned_dir(out / RESULTS) / TMP)  # made and checked here, not by a worker
        if not plan.pending:
            print("BXRun: every task is already done.")
        request = BackendRequest(settings=timerc.section(args.dask), output_dir=out, verbose=args.verbose)
        options = ProductionOptions(interval=args.interval, max_retries=args.max_retries,
                                    verbose=args.verbose, retry_policy=policy, layout=layout)
        if pilot:
            return run_production(plan, backend, request, options, timerc, pilot=True)
        return run_production(plan, backend, request, options, timerc)


def _without(argv: list[str], option: str, takes_value: str) -> list[str]:
    """``argv`` without ``option`` (also ``--opt=V`` and argparse's abbreviations) and its
    value: ``takes_value`` is "yes", "no" or "optional" (a following non-option word)."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        flag, eq, _ = a.partition("=")
        if len(flag) >= 4 and flag.startswith("--") and option.startswith(flag):
            if not eq and i + 1 < len(argv) and (
                    takes_value == "yes" or (takes_value == "optional" and not argv[i + 1].startswith("-"))):
                skip = True
            continue
        out.append(a)
    return out


def rest_argv(argv: list[str]) -> list[str]:
    """The command that launches the rest after a pilot: the same, without --pilot, and
    without --yaml (the production holds its grid since the pilot: infiles/config.yml)."""
    return _without(_without(argv, "--pilot", "optional"), "--yaml", "yes")


def cmd_pilot(args, timerc, plan: Plan, backend, overrides: dict) -> int:
    """Run the pilot's tasks as a production of their own in this process, report what they
    took and what the grid will take, and launch the rest the usual way if the user says so
    (the ledger then finds the pilot's results done on disk)."""
    from ..ledger.records import DONE
    from ..ledger.sqlite_ledger import Ledger
    from ..plan.pilot import backend_size, choose_pilot, measure, render_report
    from ..run.tasks import log_path

    out = plan.production_dir
    choice = choose_pilot(plan.tasks, plan.script.parameters, args.pilot)
    chosen = {t.task_id for t in choice.tasks}
    # the whole grid goes into the ledger (the rest planned: every count is over the grid);
    # this run submits the pilot's tasks only
    pilot_plan = Plan(out, plan.script, plan.tasks, done=plan.done, found=plan.found, run=chosen,
                      order=plan.order)
    left = len(chosen - plan.done)
    print(f"BXRun: pilot: {len(chosen)} of {len(plan.tasks)} tasks"
          + (f" ({len(chosen) - left} already done)" if left < len(chosen) else "")
          + f" on --dask {args.dask}: " + ", ".join(f"{t.task_id} ({choice.roles[t.task_id]})"
                                                   for t in choice.tasks), flush=True)
    # a pilot as large as the grid is the production itself: it ends with the aggregators
    whole = len(chosen | plan.done) == len(plan.tasks)
    code = _run_here(args, timerc, pilot_plan, backend, overrides, pilot=not whole)
    rest = shlex.join(["BXRun", *rest_argv(args.argv)])
    if code > 1:  # stopped (a signal): run_production said how to resume
        return code
    if code != 0:
        failed = []
        try:
            ledger = Ledger.open_readonly(out)
            try:
                failed = [t for t in ledger.tasks() if t.task_id in chosen and t.state != DONE]
            finally:
                ledger.close()
        except (UserError, OSError):  # no readable ledger: the lines below still say what to do
            pass
        print(f"BXRun: the pilot failed: {len(failed) or 'some'} of its {len(chosen)} tasks did not "
              "succeed; the rest is not launched.", file=sys.stderr)
        for t in failed:
            where = log_path(out, t.dirname)
            cause = getattr(t, "cause", None)
            print(f"BXRun:   {t.task_id} {t.state}" + (f" ({cause})" if cause else "")
                  + (f": {t.reason}" if t.reason else ""), file=sys.stderr)
            print(f"BXRun:     log: {where or '(none kept)'}", file=sys.stderr)
        print(f"BXRun: see them with: BXRun --status -o {out}; fix the cause and rerun the pilot: "
              f"{shlex.join(['BXRun', *args.argv])}", file=sys.stderr)
        return 1
    measured = [measure(out, t.task_id, t.dirname) for t in choice.tasks]
    remaining = len(plan.tasks) - len(plan.done | chosen)
    size = backend_size(args.dask, timerc.section(args.dask))
    layout = choose_layout(args.layout, _read_record(out).get("layout"), timerc, plan.script)
    print(render_report(choice, measured, len(plan.tasks), remaining, size, layout=layout,
                        free=shutil.disk_usage(out).free, where=out, layouts=plan.script.layouts),
          flush=True)
    if not remaining:
        print("BXRun: the pilot covered the whole grid: nothing left to launch.")
        return 0
    launch = args.yes
    if not launch and sys.stdin.isatty() and sys.stdout.isatty():
        try:
            answer = input(f"BXRun: launch the remaining {remaining} tasks? [y/N] ")
        except EOFError:
            answer = ""
        launch = answer.strip().lower() in ("y", "yes")
    if not launch:
        print(f"BXRun: not launched; the pilot's {len(chosen)} tasks count as done. Launch the "
              f"rest with: {rest}")
        return 0
    argv = rest_argv(args.argv) + ([] if args.yes else ["--yes"])
    again = build_parser().parse_args(argv)
    again.argv = argv
    print(f"BXRun: launching the remaining {remaining} tasks: {shlex.join(['BXRun', *argv])}", flush=True)
    return cmd_grid(again, timerc)


def cmd_status(args, timerc, rebuild: bool) -> int:
    from . import status_commands

    out = _resolve_output(args, timerc, writing=rebuild)
    if not out.is_dir():
        raise UserError(f"-o {args.output}: no production at {out}")
    if not rebuild:
        from ..views.ledger_report import ledger_grid_text

        grid = ledger_grid_text(out, args.grid, args.metric) if args.grid else None  # errors first
        code = status_commands.print_status(out)
        if grid is not None:
            print("\n" + grid)
        return code
    copy = out / INFILES / GRID_COPY
    if not copy.is_file():
        raise UserError(f"{out}: no {INFILES}/{GRID_COPY}; cannot know the planned tasks")
    record_data = _read_record(out)
    script_name = args.script or record_data.get("script")
    if not script_name:
        raise UserError(f"{out}: no {INFILES}/{PRODUCTION_RECORD}; give --script")
    script = _registry().script(script_name).item
    grid = load_yaml(copy, parse_custom(args.custom))
    grid = {**grid, **record_data.get("overrides", {})}
    from ..run.lock import ProductionLock

    base = Path(record_data["cwd"]) if record_data.get("cwd") else None
    plan = plan_grid(script, grid, out, source=str(copy), base=base)
    _report_found(plan)
    with ProductionLock(out):
        return status_commands.rebuild_ledger(plan)


def _dispatch(args) -> int:
    if args.plugins:
        from ..contract.plugins import describe

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
    if args.pilot is not None:
        if args.pilot < 1:
            raise UserError(f"--pilot {args.pilot}: expected a number of tasks >= 1")
        if args.run or args.status or args.rebuild_ledger or args.attach:
            raise UserError("--pilot goes with a grid (--yaml FILE -o DIR, or -o DIR of a planned "
                            "production), not with --run, --status, --rebuild-ledger or --attach")
    timerc = load_timerc()
    if args.attach:
        return cmd_attach(_resolve_output(args, timerc, writing=False))
    if args.status or args.rebuild_ledger:
        return cmd_status(args, timerc, rebuild=args.rebuild_ledger)
    if args.run or args.yaml or args.output:  # a production: the whole timerc first (imported
        from .timerc_sections import check_timerc  # only here: --status need not pay for it)
        check_timerc(timerc, _registry())
    if args.run:
        if not args.script:
            raise UserError("--run needs --script (e.g. --script cbcsim); see BXRun --plugins")
        return cmd_run(args, timerc)
    if args.yaml or args.output:
        return cmd_grid(args, timerc)
    raise UserError("nothing to do: give --run K=V..., --yaml FILE -o DIR, --status -o DIR, "
                    "--plugins or --init (see BXRun -h)")


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    parser.given_argv = given  # for -h with --script NAME
    args = parser.parse_args(given)
    args.argv = given
    if not args.verbose:
        warnings.simplefilter("default")
        warnings.formatwarning = lambda msg, cat, *a, **k: f"BXRun: warning: {msg}\n"
        # the detached driver outlives BXRun on purpose (start_detached): not a leak
        warnings.filterwarnings("ignore", r"subprocess \d+ is still running", ResourceWarning)
    return run_cli("BXRun", lambda: _dispatch(args), verbose=args.verbose,
                   interrupted="interrupted; rerun the same command to resume (what finished is kept)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
