"""``plotScan``: scan observables of a production as a cached table, plots and an index.

The seed's flags (``--yaml --custom -i -o --observables -v --cache``) keep their meaning, in
the words every timecal command shares (:mod:`timecal_core.cli.vocabulary`): ``--mode`` is the
CBC mode there, and the seed's ``--mode BACKEND`` still works with a warning (now ``--dask``).
The YAML is optional (without it every varying parameter is plotted and the
analyzer's standard objects are read). The YAML format: docs/howto/plotscan.md.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from timecal_core.config.timerc import check_output_dir, load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.cli import vocabulary
from timecal_core.cli.command_errors import run_cli
from timecal_core.contract.hookspecs import BackendRequest, FinishedTask
from timecal_core.contract.trust import check_output, make_output
from timecal_core.run.tasks import FinishedTasks
from timecal_core.config.yamlfiles import load_yaml, parse_custom
from timecal_core.cms.harvested_layout import MODES
from .observables import (OBSERVABLES, TABLE_NAME, BXHistRef, Sources, comparable, load_or_build,
                          observable, param_column, same_value, scan_output)
from .store import TASKS_NAME

PROG = "plotScan"
DISTRIBUTION = "timecal-analysis"
WORKER_MODE = "worker"  # the files read here, one after the other (no --dask)
YAML_KEYS = ("parameters", "labels", "efficiency", "firerate", "hists")


def build_parser() -> argparse.ArgumentParser:
    from .figureset import ALL_SLICES_UP_TO

    p = argparse.ArgumentParser(
        prog="plotScan", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Scan observables (efficiency, BX contaminations, fire rate, out-of-time "
                    "fraction, mean) vs delay for a production: Parquet tables, PNG/PDF plots, "
                    "ROOT data and index.html.",
        epilog=f"""Which figures: for each observable, mode and scanned parameter, curves vs delay
(one per value) and the delay x parameter map, the other parameters fixed at a slice:
  - every combination of the other parameters, while they make at most {ALL_SLICES_UP_TO};
  - beyond that, the others at their middle value (the lower of two middles), then each
    other parameter in turn at its smallest and at its largest value: at most 1 + 2 (k - 1)
    slices for k scanned parameters, however many values each has.
--select narrows the grid first (a term NAME=VALUE fixes a parameter); --all-slices draws
every combination; the YAML's 'parameters' chooses the values of each parameter.""")
    vocabulary.add(p, "--yaml", "the plot configuration (parameters, labels, efficiency, firerate, "
                                "hists)", metavar="FILE")
    vocabulary.add(p, "--custom", "(e.g. mode=Sampled: plot that mode only)", default=[],
                   metavar="KEY=VALUE")
    vocabulary.add(p, "-i", "(relative: under timerc [paths] production)", required=True,
                   metavar="PRODUCTION")
    vocabulary.add(p, "-o", "the table, plots and index.html (relative: under timerc [paths] scans; "
                            "default: the production's path under [paths] production, e.g. a/scan1, "
                            "or NAME-HASH for one elsewhere)", metavar="DIR")
    vocabulary.add_list(p, "--observables", metavar="NAME",
                        help="subset to plot: " + ", ".join(o.key for o in OBSERVABLES))
    vocabulary.add(p, "--mode", "plot that mode only, as --custom mode=... (default: both)",
                   metavar="|".join(MODES))
    vocabulary.add(p, "--dask", "an installed backend (local, slurm, htcondor...) whose Dask cluster "
                                "reads the files and draws the figures (default: the files are read "
                                "here and the figures drawn by local processes, one per core)",
                   metavar="BACKEND")
    vocabulary.add_list(p, "--formats", old_commas=True, metavar="FORMAT",
                        help="what to write per figure, among png pdf root (default: all three)")
    p.add_argument("--only", metavar="WHAT",
                   help="draw only 'curves', only 'maps', or only one observable (as --observables)")
    p.add_argument("--workers", type=int, help="local processes drawing figures (default: one per core)")
    p.add_argument("--cache", action="store_true", help="rebuild the observables table even if it is up to date")
    p.add_argument("--allow-missing", action="store_true",
                   help="grid points of the production's planned grid with no finished task stop "
                        "plotScan (it names them); with this it plots the others and lists the "
                        "missing ones in index.html")
    vocabulary.add_list(p, "--select", metavar="TERM",
                        help="plot only the tasks these filter terms select, in the monitor's language: "
                             "NAME OP VALUE with OP one of = != < <= > >= (NAME=A,B: any of A, B), all "
                             "terms holding (e.g. --select \"threshold>=6000 subdet=BLL\")")
    p.add_argument("--all-slices", action="store_true",
                   help="draw every combination of the other parameters (see 'Which figures' below)")
    vocabulary.add_standard(p, DISTRIBUTION)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(settle(args)) and 0, verbose=args.verbose,
                   interrupted="interrupted; the observables table is only replaced once complete")


def settle(args: argparse.Namespace) -> argparse.Namespace:
    """``--mode`` as the vocabulary means it (the CBC mode: the same as ``--custom mode=``),
    and what it meant before, still working with a warning: ``--mode worker`` (the default)
    and ``--mode BACKEND`` (now ``--dask BACKEND``, which reads the files and draws the
    figures)."""
    if args.mode is None:
        return args
    if args.mode in MODES:
        given = parse_custom(args.custom).get("mode")
        if given is None:
            args.custom = [*args.custom, f"mode={args.mode}"]
        elif given != args.mode:
            raise UserError(f"--mode {args.mode} and --custom mode={given} disagree: give the mode once")
        return args
    from timecal_core.contract.plugins import get_registry

    backends = sorted(get_registry().backends)
    old = f"--mode {args.mode} (where the files are read)"
    if args.mode not in (WORKER_MODE, *backends):
        raise UserError(f"--mode {args.mode}: give {' or '.join(MODES)} (the CBC mode to plot); a Dask "
                        f"backend goes with --dask (installed: {', '.join(backends) or 'none'})")
    if args.dask and args.dask != args.mode:
        vocabulary.deprecated(PROG, old, f"--dask {args.dask} reads the files too; leave --mode out")
    elif args.mode == WORKER_MODE:
        vocabulary.deprecated(PROG, old, "the files are read here unless --dask says where; leave --mode out")
    else:
        vocabulary.deprecated(PROG, old, f"use --dask {args.mode}")
        args.dask = args.mode
    args.mode = None
    return args


# --------------------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> Path:
    from .html import write_index

    timerc = load_timerc()
    production = _resolve(args.input, timerc, "production", "-i")
    if not (production / "results").is_dir():
        raise UserError(f"-i {args.input}: {production} is not a production directory (no results/ in it)")
    output = _resolve(args.output, timerc, "scans", "-o") if args.output else scan_output(production, timerc)
    check_output_dir(output)  # a file there is one line now, not a crash after the work
    check_output(output, what=f"-o {args.output or output.name}")  # another user's, or a symlink: before anything is written
    custom = parse_custom(args.custom)
    modes = _modes(custom)
    config = _load_config(args.yaml, custom) if args.yaml else {}
    source = args.yaml or "plotScan"
    sources = sources_from_config(config, modes, source)
    labels = {str(k): str(v) for k, v in (config.get("labels") or {}).items()}
    observables = [observable(name) for name in args.observables] if args.observables else list(OBSERVABLES)
    formats = parse_formats(args.formats)
    kinds, observables = apply_only(args.only, observables)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: give a positive number of processes")

    tasks = lean_tasks(production)
    if not tasks:
        raise UserError(f"{production}: no finished task in results/; wait for the production or check BXRun")
    # The grid of the whole production (its planned grid when the ledger holds it), then the
    # values the selection keeps: a parameter it fixes stays on the grid with one value, so
    # the figures say where they were cut.
    planned = planned_points(production)
    on_grid = select_tasks(tasks, args.select) if args.select else tasks
    grid = resolve_grid(config.get("parameters"), tasks, source, planned)
    if args.select:
        grid = restrict_grid(grid, on_grid)
    selected, missing = match_grid(grid, on_grid)
    notes = []
    if missing:
        message = describe_missing(missing, grid, production)
        if not args.allow_missing:
            raise UserError(message + " (--allow-missing plots the others and lists these in index.html)")
        print(f"plotScan: warning: {message}", file=sys.stderr)
        notes.append(f"{len(missing)} of the {_points(grid)} grid points have no finished task: "
                     + "; ".join(_point_text(point) for point in missing))
    _check_fixed(grid, selected, source)

    mode = args.dask or WORKER_MODE  # where the files are read
    make_output(output, what=f"-o {args.output or output.name}")
    cluster = SharedCluster(args.dask, timerc, output, args.verbose) if args.dask else None
    try:
        if cluster is not None and mode == args.dask:
            runner = cluster.runner("files")
        else:
            runner = _runner(mode, timerc, output, args.verbose)
        scan, built = load_or_build(tasks, output, sources, rebuild=args.cache, runner=runner)
        print(f"plotScan: observables of {len(tasks)} file(s) {built.describe()} in "
              f"{output / TABLE_NAME} (+ {TASKS_NAME})", file=sys.stderr)
        position = dict(zip(scan.tasks["task_id"].tolist(), scan.tasks.index.tolist()))
        on_grid = [position[t.task_id] for t in selected]
        del tasks, selected, position  # the figures need the store's indices only (and workers fork)
        records = _plot(args, scan, grid, on_grid, observables, modes, output, labels, kinds, formats,
                        cluster)
    finally:
        if cluster is not None:
            cluster.close()
    index = write_index(output, records, f"plotScan: {production.name}", labels, notes)
    print(f"plotScan: {len(records)} figure(s); open {index}", file=sys.stderr)
    return index


def _plot(args, scan, grid, on_grid, observables, modes, output, labels, kinds, formats, cluster):
    import pandas as pd

    from .figureset import describe_choice
    from .plotting import PlotRequest, local_processes, plot_scan

    # Parameters named like a table column (cbcsim's 'mode') are 'param_<name>' in the table.
    labels.update({param_column(n): labels[n] for n in grid if n in labels})
    table_grid = {}
    for name, values in grid.items():
        known = pd.unique(scan.tasks[param_column(name)]).tolist()
        table_grid[param_column(name)] = [_table_value(known, v) for v in values]
    request = PlotRequest(
        store=scan, grid=table_grid, observables=observables, modes=modes, output_dir=output,
        labels=labels, kinds=kinds, formats=formats, tasks=on_grid, every_slice=args.all_slices)
    scanned = [p for p, v in table_grid.items() if len(v) > 1] or list(table_grid)[:1]
    print(f"plotScan: {describe_choice(table_grid, scanned, args.all_slices)}", file=sys.stderr)
    if cluster is not None:
        runner = cluster.runner("figures", progress=False)
    else:
        def runner(func, jobs):
            return local_processes(func, jobs, args.workers)
    return plot_scan(request, progress=Progress("figures"), runner=runner)


def parse_formats(given: Sequence[str] | None) -> tuple[str, ...]:
    """``--formats png root`` (None: every format)."""
    from .plotting import FORMATS

    if not given:
        return tuple(FORMATS)
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in given if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise UserError(f"--formats {' '.join(given)}: choose from {', '.join(FORMATS)} "
                        f"(separated by spaces)")
    return wanted


def apply_only(only: str | None, observables):
    """``--only curves|maps|OBSERVABLE`` -> (figure kinds, observables)."""
    from .plotting import KINDS

    if not only:
        return KINDS, observables
    if only.lower() in ("curves", "curve"):
        return ("curves",), observables
    if only.lower() in ("maps", "map"):
        return ("map",), observables
    try:
        return KINDS, [observable(only)]
    except UserError as exc:
        raise UserError(f"--only {only}: give curves, maps or an observable; {exc}") from None


def _resolve(value: str, timerc, key: str, option: str) -> Path:
    """Absolute as given; relative under timerc [paths] ``key`` (the seed's rule)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    root = timerc.optional_path(key)
    if root is None:
        raise UserError(f"{option} {value}: a relative path needs [paths] {key} in {timerc.path} "
                        f"(or give an absolute path)")
    return root / path


def _modes(custom: Mapping[str, str]) -> tuple[str, ...]:
    if "mode" not in custom:
        return MODES
    if custom["mode"] not in MODES:
        raise UserError(f"--custom mode={custom['mode']}: allowed modes: {', '.join(MODES)}")
    return (custom["mode"],)


def _load_config(path: str, custom: Mapping[str, str]) -> dict[str, Any]:
    """The YAML with ``{mode}`` kept as a template: the table covers every mode the names
    allow, and --custom mode=... only chooses what is plotted."""
    config = load_yaml(path, {**custom, "mode": "{mode}"})
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping with keys {', '.join(YAML_KEYS)}")
    unknown = sorted(set(config) - set(YAML_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(YAML_KEYS)}")
    return config


# --------------------------------------------------------------------------- configuration
def sources_from_config(config: Mapping[str, Any], plot_modes: Sequence[str], source: str) -> Sources:
    """Where to read each object, from the YAML's ``efficiency``, ``firerate`` and ``hists``.

    Maps named through ``{mode}`` are read for both modes; a name spelt out for one mode
    (``OffsetScanSampled``) restricts the table to the plotted mode, which it must match.
    """
    default = Sources()
    eff = _section(config, "efficiency", ("folder", "fired", "hits", "in_time_bin"), source)
    fire = _section(config, "firerate", ("folder", "name"), source)
    names = [str(eff.get("fired", default.fired)), str(eff.get("hits", default.hits)),
             str(fire.get("name", default.attribution))]
    literal = [n for n in names if "{mode}" not in n]
    modes = tuple(MODES) if not literal else tuple(plot_modes)
    if literal and len(modes) > 1:
        raise UserError(f"{source}: '{literal[0]}' is spelt for one mode; write {{mode}} in it, "
                        f"or choose the mode with --custom mode=...")
    for name in literal:
        if modes[0] not in name:
            raise UserError(f"{source}: '{name}' is not a {modes[0]} object (--custom mode={modes[0]}); "
                            f"write {{mode}} in it")
    try:
        in_time_bin = float(eff.get("in_time_bin", default.in_time_bin))
    except (TypeError, ValueError):
        raise UserError(f"{source}: efficiency.in_time_bin must be a number, got {eff['in_time_bin']!r}") from None
    return Sources(
        efficiency_folder=str(eff.get("folder", default.efficiency_folder)),
        fired=str(eff.get("fired", default.fired)),
        hits=str(eff.get("hits", default.hits)),
        firerate_folder=str(fire.get("folder", default.firerate_folder)),
        attribution=str(fire.get("name", default.attribution)),
        bx_hists=_bx_hists(config.get("hists"), modes, source),
        modes=tuple(modes),
        in_time_bin=in_time_bin,
    )


def _section(config: Mapping[str, Any], key: str, allowed: Sequence[str], source: str) -> dict:
    section = config.get(key) or {}
    if not isinstance(section, dict):
        raise UserError(f"{source}: '{key}' must be a mapping with keys {', '.join(allowed)}")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise UserError(f"{source}: {key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return section


def _bx_hists(hists: Any, modes: Sequence[str], source: str) -> tuple[BXHistRef, ...]:
    """``name -> {delay, folder}``; a ``{mode}`` name stands for every mode, a filled one
    (``--custom mode=...``, or a literal ``Sampled``) for its own mode."""
    if not hists:
        return ()
    if not isinstance(hists, dict):
        raise UserError(f"{source}: 'hists' must map histogram names to {{delay: ..., folder: ...}}")
    refs = []
    for name, spec in hists.items():
        if not isinstance(spec, dict) or "delay" not in spec or "folder" not in spec:
            raise UserError(f"{source}: hists: '{name}' needs a delay and a folder, e.g. "
                            f"{{delay: 12.3, folder: 'DQMData/Run 1/Ph2TkBXHist/Run summary/Hist1D'}}")
        try:
            delay = float(spec["delay"])
        except (TypeError, ValueError):
            raise UserError(f"{source}: hists: '{name}' delay {spec['delay']!r} is not a number") from None
        own = [m for m in modes if "{mode}" in str(name) or m in str(name)]
        for mode in own:
            refs.append(BXHistRef(mode, delay, str(spec["folder"]).replace("{mode}", mode),
                                  str(name).replace("{mode}", mode)))
    return tuple(refs)


SHOWN_MISSING = 5  # grid points named in the one-line message; index.html lists them all


def planned_points(production: Path) -> list[dict[str, Any]] | None:
    """The parameters of every task of the production's planned grid, finished or not (its
    ledger holds the whole grid, a pilot's untouched rest included), or None when there is
    no readable ledger (the grid is then what finished)."""
    import json

    from timecal_core.ledger.sqlite_ledger import LEDGER_NAME, Ledger

    if not (production / LEDGER_NAME).is_file():
        return None
    try:
        ledger = Ledger.open_readonly(production)
    except UserError as exc:
        print(f"plotScan: warning: {exc}; the grid plotted is what finished", file=sys.stderr)
        return None
    try:
        return [json.loads(text) for (text,) in ledger.columns(["params"])]
    finally:
        ledger.close()


def _points(grid: Mapping[str, Sequence[Any]]) -> int:
    count = 1
    for values in grid.values():
        count *= len(values)
    return count


def _point_text(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def describe_missing(missing: Sequence[Mapping[str, Any]], grid: Mapping[str, Sequence[Any]],
                     production: Path) -> str:
    """One line: how many grid points have no finished task, the first few named."""
    named = "; ".join(_point_text(p) for p in missing[:SHOWN_MISSING])
    more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
    return (f"{len(missing)} of the {_points(grid)} grid points have no finished task in {production}: "
            f"{named}{more}")


def resolve_grid(parameters: Any, tasks: Sequence[FinishedTask], source: str,
                 planned: Sequence[Mapping[str, Any]] | None = None) -> dict[str, list[Any]]:
    """The YAML ``parameters`` checked against the production; without it, every parameter
    that takes more than one value in the production's planned grid (``planned``: every
    task's parameters, finished or not; default: the finished tasks')."""
    distinct: dict[str, dict] = {}  # name -> {value: None}, ordered (a list search was quadratic)
    for params in planned if planned is not None else (t.params for t in tasks):
        for name, value in params.items():
            distinct.setdefault(name, {})[_hashable(value)] = None
    known = {name: list(values) for name, values in distinct.items()}
    if not parameters:
        varying = {k: sorted(v, key=_sort_key) for k, v in known.items() if len(v) > 1}
        return varying or {k: v for k, v in list(known.items())[:1]}
    if not isinstance(parameters, dict):
        raise UserError(f"{source}: 'parameters' must map parameter names to a value or a list of values")
    grid = {}
    for name, values in parameters.items():
        if name not in known:
            raise UserError(f"{source}: parameter '{name}' is not a parameter of the production; "
                            f"it has: {', '.join(known)}")
        grid[name] = values if isinstance(values, list) else [values]
    return grid


def _sort_key(value: Any):
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def match_grid(grid: Mapping[str, Sequence[Any]], tasks: Sequence[FinishedTask]
               ) -> tuple[list[FinishedTask], list[dict[str, Any]]]:
    """Tasks on the grid, and the grid points no task covers: the tasks are indexed once by
    their values of the grid's parameters (``same_value`` spellings: 5000 is 5000.0), each
    grid point is then one look-up."""
    names = list(grid)
    by_point: dict[tuple, list[FinishedTask]] = {}
    for task in tasks:
        by_point.setdefault(tuple(comparable(task.params.get(n)) for n in names), []).append(task)
    selected, missing = [], []
    for point in itertools.product(*(grid[n] for n in names)):
        hits = by_point.get(tuple(comparable(v) for v in point))
        if hits:
            selected.extend(hits)
        else:
            missing.append(dict(zip(names, point)))
    return selected, missing


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return str(value)


def lean_tasks(production: Path) -> list[FinishedTask]:
    """What plotScan keeps of each finished task: id, directory, output and its parameters
    packed (~0.5 kB a task; no provenance), from the one pass that checks the results."""
    return list(FinishedTasks(production, lean=True))


def select_tasks(tasks: Sequence[FinishedTask], words: Sequence[str]) -> list[FinishedTask]:
    """``--select``: the tasks the filter terms select (the monitor's selection language,
    checked against the values the tasks have)."""
    from timecal_core.views.selection import ParameterSpace, SelectionError, is_term

    terms = [w for text in words for w in str(text).split()]
    for word in terms:
        if not is_term(word):
            raise SelectionError(f"--select {word!r}: not a filter term; write NAME OP VALUE, e.g. "
                                 f"threshold>=6000 subdet=BLL")
    names = list(dict.fromkeys(n for t in tasks for n in t.params))
    rows = [(t.task_id, *(_hashable(t.params.get(n)) for n in names)) for t in tasks]
    space = ParameterSpace.from_columns(names, rows)
    try:
        matching = space.parse(terms).matching(space)
    except SelectionError as exc:
        raise SelectionError(f"--select: {exc}") from None
    chosen = [t for t in tasks if t.task_id in matching]
    if not chosen:
        raise UserError(f"--select {' '.join(terms)}: selects no finished task")
    return chosen


def restrict_grid(grid: Mapping[str, Sequence[Any]], tasks: Sequence[FinishedTask]) -> dict[str, list]:
    """The grid's values that some of ``tasks`` (the selected ones) have: a term that drops
    values drops them from the grid (a grid of the YAML's ``parameters`` included)."""
    have = {n: {comparable(t.params.get(n)) for t in tasks} for n in grid}
    out = {n: [v for v in values if comparable(v) in have[n]] for n, values in grid.items()}
    empty = [n for n, values in out.items() if not values]
    if empty:
        raise UserError(f"--select: no selected task has a value of {', '.join(empty)} on the grid")
    return out


def _check_fixed(grid: Mapping[str, Any], tasks: Sequence[FinishedTask], source: str) -> None:
    """A parameter outside the grid that still varies would mix curves silently."""
    for name in tasks[0].params if tasks else ():
        if name in grid:
            continue
        values = sorted({str(t.params.get(name)) for t in tasks})
        if len(values) > 1:
            raise UserError(f"{source}: parameter '{name}' varies in the production ({', '.join(values)}); "
                            f"add it to 'parameters' with the value(s) to plot")


def _table_value(known: Sequence[Any], value: Any) -> Any:
    """The table's own spelling of a grid value (5000 -> 5000.0 when the column is float),
    among the column's distinct values ``known``."""
    for candidate in known:
        if same_value(candidate, value):
            return candidate
    return value


# --------------------------------------------------------------------------- execution
class Progress:
    """``figures 12/100  12%  elapsed 0:03  ETA 0:21`` on stderr; redrawn in place on a
    terminal, one line every few seconds otherwise (batch logs stay short).

    The ETA is measured from the first completions on, not from the start: starting the
    workers, reading the first values and drawing the first frames would otherwise make the
    first lines promise days. Until a few items have completed it says ``ETA ?``."""

    #: completions after the first one, and seconds, before an ETA is given
    MIN_ITEMS, MIN_SECONDS = 2, 1.0

    def __init__(self, what: str, stream=None, every: float = 5.0):
        self.what, self.stream, self.every = what, stream or sys.stderr, every
        self.start = time.monotonic()
        self.last = 0.0
        self.first: tuple[float, int] | None = None  # (time, done) at the first completion

    def eta(self, done: int, total: int, now: float) -> float | None:
        if done >= total:
            return 0.0
        if self.first is None:
            return None
        since, base = now - self.first[0], done - self.first[1]
        if base < self.MIN_ITEMS or since < self.MIN_SECONDS:
            return None
        return (total - done) * since / base

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done and self.first is None:
            self.first = (now, done)
        tty = self.stream.isatty()
        if done < total and not tty and now - self.last < self.every and done:
            return
        self.last = now
        eta = self.eta(done, total, now)
        line = (f"{self.what} {done}/{total} {100 * done // max(total, 1):3d}%  "
                f"elapsed {_clock(now - self.start)}  ETA {'?' if eta is None else _clock(eta)}")
        self.stream.write(("\r" + line + ("\n" if done >= total else "")) if tty else line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _runner(mode: str, timerc, output: Path, verbose: bool) -> Callable:
    if mode == WORKER_MODE:
        return serial_with_progress
    from timecal_core.contract.plugins import get_registry

    backend = get_registry().backend(mode).item  # unknown -> UserError listing the installed ones

    def on_cluster(func, calls):
        running = backend.start(BackendRequest(settings=timerc.section(mode), output_dir=output,
                                               verbose=verbose))
        try:
            yield from dask_runner(running, func, calls)
        finally:
            running.close()

    return on_cluster


class SharedCluster:
    """One cluster of ``--dask BACKEND`` for the whole run: the observables (unless --mode
    names another backend) and the figures are mapped on the same workers."""

    def __init__(self, backend_name: str, timerc, output: Path, verbose: bool):
        from timecal_core.contract.plugins import get_registry

        backend = get_registry().backend(backend_name).item  # unknown -> UserError listing them
        self.running = backend.start(BackendRequest(settings=timerc.section(backend_name),
                                                    output_dir=output, verbose=verbose))

    def runner(self, what: str, progress: bool = True) -> Callable:
        def on_cluster(func, calls):
            yield from dask_runner(self.running, func, calls, what if progress else None)
        return on_cluster

    def close(self) -> None:
        self.running.close()


def serial_with_progress(func, calls) -> Iterator:
    progress = Progress("files")
    for i, args in enumerate(calls):
        yield func(*args)
        progress(i + 1, len(calls))


#: Tasks handed to the Dask cluster at once; more are submitted as these complete.
DASK_IN_FLIGHT = 2000


def dask_runner(running, func, calls, what: str | None = "files") -> Iterator:
    """Map ``func`` over ``calls`` on a started cluster, results in completion order.
    ``calls`` (any iterable) are argument tuples (files) or single jobs (figures), handed to
    the cluster ``DASK_IN_FLIGHT`` at a time."""
    from distributed import Client, as_completed

    known = len(calls) if hasattr(calls, "__len__") else None
    calls = iter(calls)
    head = list(itertools.islice(calls, DASK_IN_FLIGHT))
    if not head:
        return
    total = known if known is not None else len(head)
    if not running.cluster.workers:  # batch backends start empty
        running.adapt(1, min(len(head), 50))
    progress = Progress(what) if what else None
    with Client(running.cluster, security=running.security) as client:
        def submit(args):
            return client.submit(func, *(args if isinstance(args, tuple) else (args,)), pure=False)

        pending = as_completed([submit(args) for args in head])
        done = 0
        for future in pending:
            result = future.result()
            future.release()
            nxt = next(calls, None)
            if nxt is not None:
                pending.add(submit(nxt))
                total += known is None
            done += 1
            yield result
            if progress:
                progress(done, total)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
