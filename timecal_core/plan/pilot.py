"""Before launching a big scan: what the grid will cost (what a script accepts is
:mod:`timecal_core.config.parameter_table`).

``BXRun ... --pilot N`` runs a handful of tasks chosen to span the grid where the
cost changes (:func:`choose_pilot`: the corners and centre of the axes a script declares as
``work``, always the largest) as an ordinary production restricted to them, then reads their
``params.json`` (:func:`measure`) and extrapolates to the whole grid (:func:`render_report`):
a 30,000-task submission is then sized from measurements, not guessed. The pilot's results
are ordinary results: the production that follows counts them as done.

Nothing here talks to Dask or writes: the running is
:func:`timecal_core.driver.production.run_production`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.hookspecs import Parameter
from ..textformat import format_bytes, format_duration, render_table
from .completion import PARAMS_NAME, RESULTS


DEFAULT_PILOT_TASKS = 5
MEMORY_MARGIN = 1.5  # peak RSS varies between tasks of one region and between nodes
WALLTIME_MARGIN = 2.0  # slower nodes, busy file systems, queue-time start-up
MIB = 1024 * 1024
GIB = 1024 * MIB

LARGEST, SMALLEST, CENTRE, CORNER, SPREAD = ("largest work", "smallest work", "centre",
                                             "corner", "spread")
# the same roles when no parameter that changes the work varies: the corners of the grid,
# which say nothing of the work
UNDECLARED = {LARGEST: "largest values", SMALLEST: "smallest values"}


# --------------------------------------------------------------------------- the parameters

# --------------------------------------------------------------------------- choosing tasks
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ordered(values: Sequence[Any]) -> list[Any]:
    """An axis from small to large: numbers sorted, anything else in the grid's order."""
    if all(_is_number(v) for v in values):
        return sorted(values)
    return list(values)


def _spread(values: list[Any]) -> list[Any]:
    """An axis's values in the order that covers it fastest: ends, middle, then the rest."""
    if len(values) <= 2:
        return list(values)
    order = [values[0], values[-1], values[len(values) // 2]]
    rest = [v for i, v in enumerate(values) if i not in (0, len(values) - 1, len(values) // 2)]
    return order + rest


@dataclass(frozen=True)
class PilotChoice:
    tasks: list  # TaskSpec, in the order chosen
    roles: dict[str, str]  # task id -> why it was chosen
    work_axes: list[str]  # the axes spanned (declared work, or every varying axis)
    declared: bool  # True when the script declared them (work=True), False when guessed
    largest: str  # the task id with the largest work
    varying: list[str] = field(default_factory=list)  # every parameter with more than one value
    #: per work axis, each value's place between its smallest (0) and largest (1) value, and
    #: the mean place over the grid (a cartesian product: every value equally often)
    positions: dict[str, dict] = field(default_factory=dict)
    grid_mean: dict[str, float] = field(default_factory=dict)


def choose_pilot(tasks: Sequence, parameters: Sequence[Parameter], n: int) -> PilotChoice:
    """Up to ``n`` tasks spanning the grid where its cost changes.

    The axes spanned are the varying parameters declared ``work=True`` (all varying ones if
    none is): first the task with the largest work (every work axis at its largest), then the
    smallest, the centre, then the other corners of the work axes, then tasks spread evenly
    over the grid. Parameters that do not change the work take, from one pilot task to the
    next, their first, last, middle... values, so the pilot also tries them."""
    tasks = list(tasks)
    if not tasks or n < 1:
        return PilotChoice([], {}, [], False, "", [], {}, {})
    names = [p.name for p in parameters]
    values: dict[str, list[Any]] = {}
    for name in names:
        seen: dict[Any, None] = {}
        for t in tasks:
            seen.setdefault(t.params[name], None)
        values[name] = _ordered(list(seen))
    varying = [name for name in names if len(values[name]) > 1]
    declared = [p.name for p in parameters if getattr(p, "work", False) and p.name in varying]
    work_axes = declared or varying
    others = [name for name in varying if name not in work_axes]
    index = {}
    for t in tasks:
        index.setdefault(tuple(t.params[name] for name in varying), t)

    def ranks(t) -> tuple:
        return tuple(values[a].index(t.params[a]) for a in work_axes)

    # targets on the work axes: (values per work axis, role)
    targets: list[tuple[tuple, str]] = []
    if work_axes:
        top = tuple(values[a][-1] for a in work_axes)
        bottom = tuple(values[a][0] for a in work_axes)
        centre = tuple(values[a][(len(values[a]) - 1) // 2 if len(values[a]) > 2 else 0]
                       for a in work_axes)
        targets += [(top, LARGEST), (bottom, SMALLEST)]
        if len(work_axes) and any(len(values[a]) > 2 for a in work_axes):
            targets.append((centre, CENTRE))
        if len(work_axes) <= 12:  # 4096 corners at most; beyond that the spread covers it
            corners = []
            for mask in range(2 ** len(work_axes)):
                corner = tuple(values[a][-1 if mask >> i & 1 else 0] for i, a in enumerate(work_axes))
                corners.append((-sum(mask >> i & 1 for i in range(len(work_axes))), mask, corner))
            targets += [(c, CORNER) for _, _, c in sorted(corners)]  # larger corners first
    spreads = {name: _spread(values[name]) for name in others}
    chosen: list = []
    roles: dict[str, str] = {}

    def take(t, role: str) -> None:
        if t is not None and t.task_id not in roles and len(chosen) < n:
            chosen.append(t)
            roles[t.task_id] = role

    spanned: set[tuple] = set()
    for point, role in targets:
        if len(chosen) >= n:
            break
        if point in spanned:  # the same work again (a corner that is also the largest...)
            continue
        spanned.add(point)
        j = len(chosen)
        key_values = dict(zip(work_axes, point))
        for name in others:
            key_values[name] = spreads[name][j % len(spreads[name])]
        t = index.get(tuple(key_values[name] for name in varying))
        take(t, role)
    # the rest: spread evenly over the grid, in its order
    if len(chosen) < n:
        left = [t for t in tasks if t.task_id not in roles]
        want = min(n - len(chosen), len(left))
        for k in range(want):
            take(left[(k * len(left)) // want], SPREAD)
    largest = ""
    if chosen:
        largest = max(chosen, key=ranks).task_id if work_axes else chosen[0].task_id
        roles[largest] = LARGEST if work_axes else "the only task"
    if not declared:
        roles = {tid: UNDECLARED.get(role, role) for tid, role in roles.items()}
    positions = {a: _positions(values[a]) for a in work_axes}
    grid_mean = {a: sum(positions[a].values()) / len(positions[a]) for a in work_axes}
    return PilotChoice(chosen, roles, work_axes, bool(declared), largest, varying, positions, grid_mean)


def _positions(values: list[Any]) -> dict[Any, float]:
    """Numbers by value (a log-spaced N scan has its mean near its small end), anything else
    by rank."""
    if all(_is_number(v) for v in values):
        low, high = float(values[0]), float(values[-1])
        return {v: (float(v) - low) / (high - low) if high > low else 0.0 for v in values}
    return {v: i / (len(values) - 1) if len(values) > 1 else 0.0 for i, v in enumerate(values)}


MAX_FIT_AXES = 6  # 64 terms at most; beyond, the pilot's mean


def grid_average(choice: PilotChoice, measured: dict[str, float]) -> tuple[float, bool]:
    """The grid's mean per task of a quantity measured on the pilot tasks (task id ->
    value): a multilinear model of the work axes (intercept, each axis, then their
    products, as many terms as the pilot has distinct points) fitted to the pilot and taken
    at the grid's mean, which for a cartesian grid is exact for a multilinear cost (events x
    pile-up, say) once the corners are measured. Kept between the smallest and largest
    measurement. Returns (value, fitted); the plain mean when there is nothing to fit."""
    tasks = [t for t in choice.tasks if t.task_id in measured]
    ys = [measured[t.task_id] for t in tasks]
    if not ys:
        return 0.0, False
    mean = sum(ys) / len(ys)
    axes = choice.work_axes
    if not axes or len(axes) > MAX_FIT_AXES or len(ys) < 2:
        return mean, False
    import numpy as np

    points = [tuple(choice.positions[a][t.params[a]] for a in axes) for t in tasks]
    subsets = [s for r in range(len(axes) + 1) for s in itertools.combinations(range(len(axes)), r)]
    subsets = subsets[:len(set(points))]
    if len(subsets) < 2:
        return mean, False
    design = np.array([[math.prod(p[i] for i in s) for s in subsets] for p in points])
    coef = np.linalg.lstsq(design, np.array(ys, dtype=float), rcond=None)[0]
    at = [choice.grid_mean[a] for a in axes]
    value = float(sum(c * math.prod(at[i] for i in s) for c, s in zip(coef, subsets)))
    return min(max(value, min(ys)), max(ys)), True


# --------------------------------------------------------------------------- measuring
@dataclass
class Measured:
    """What one finished task's ``params.json`` says it took (None when it does not say)."""

    task_id: str
    dirname: str
    runtime: float | None = None  # s, start to end of the attempt that succeeded
    #: s, the steps' own wall time: without a worker's one-off start-up (e.g. the warm step
    #: server's imports on its first task), so the production's wall time is not inflated
    steps_wall: float | None = None
    cpu: float | None = None  # s, user + sys of its steps
    peak_rss: int | None = None  # bytes, the largest step's peak
    output: int | None = None  # bytes, the output file
    disk: int | None = None  # bytes, the whole result directory
    layout: str | None = None  # the output layout it was written in (params.json)
    extra: dict = field(default_factory=dict)


def _number(x: Any) -> float | None:
    return float(x) if _is_number(x) and math.isfinite(x) else None


def measure(production_dir: Path, task_id: str, dirname: str) -> Measured:
    """Read ``results/<dirname>/params.json`` as robustly as a record written by another
    version may need: every field optional, unknown fields ignored."""
    directory = Path(production_dir) / RESULTS / dirname
    m = Measured(task_id, dirname)
    try:
        record = json.loads((directory / PARAMS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return m
    if not isinstance(record, dict):
        return m
    start, end = _number(record.get("start")), _number(record.get("end"))
    if start is not None and end is not None and end >= start:
        m.runtime = end - start
    steps = [s for s in record.get("steps") or [] if isinstance(s, dict)]
    cpu = [(_number(s.get("user")) or 0.0) + (_number(s.get("sys")) or 0.0) for s in steps
           if _number(s.get("user")) is not None or _number(s.get("sys")) is not None]
    if cpu:
        m.cpu = sum(cpu)
    rss = [_number(s.get("maxrss_kib")) for s in steps]
    rss = [r for r in rss if r is not None]
    if rss:
        m.peak_rss = int(max(rss) * 1024)
    walls = [_number(s.get("wall")) for s in steps]
    if walls and all(w is not None for w in walls):
        m.steps_wall = sum(walls)
        if m.runtime is None:
            m.runtime = m.steps_wall
    # the attempt's totals, where the record has them (timecal_core.run.provenance)
    if m.cpu is None and _number(record.get("cpu")) is not None:
        m.cpu = _number(record.get("cpu"))
    if m.peak_rss is None and _number(record.get("maxrss_kib")) is not None:
        m.peak_rss = int(_number(record.get("maxrss_kib")) * 1024)
    if isinstance(record.get("layout"), str):
        m.layout = record["layout"]
    if _number(record.get("output_bytes")) is not None:
        m.output = int(_number(record.get("output_bytes")))
    output = record.get("output")
    if m.output is None and isinstance(output, str) and output:
        try:
            m.output = (directory / output).stat().st_size
        except OSError:
            pass
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    m.disk = total
    return m


# --------------------------------------------------------------------------- the backend's size
@dataclass(frozen=True)
class BackendSize:
    slots: int  # tasks that run at once
    text: str  # how that number was found


def _positive(settings: Mapping[str, str], key: str) -> int | None:
    try:
        value = int(str(settings.get(key, "")).strip())
    except ValueError:
        return None
    return value if value > 0 else None


def backend_size(backend: str, settings: Mapping[str, str]) -> BackendSize:
    """How many tasks the configured backend runs at once (workers x threads), from its
    timerc section as the backends read it: ``[local] workers`` (one thread each), or a
    batch section's jobs (or adapt_max) x processes x cores/processes. The core knows no
    plugin: a backend with other keys counts as one slot, and the report says so."""
    section = f"timerc [{backend}]"
    if backend == "local" or "workers" in settings:
        workers = _positive(settings, "workers")
        if workers is None:
            workers = os.cpu_count() or 1
            return BackendSize(workers, f"{workers} local workers x 1 thread (one per core: "
                                        f"{section} workers is not set)")
        # A worker of `cores` cores runs that many tasks at once (a gateway's worker_cores).
        threads = _positive(settings, "cores") or 1
        return BackendSize(workers * threads, f"{workers} workers x {threads} thread{'s' if threads > 1 else ''} "
                                              f"({section} workers" + (", cores)" if threads > 1 else ")"))
    batch_keys = ("jobs", "adapt_max", "adapt_min", "cores", "processes", "memory")
    if any(k in settings for k in batch_keys) or backend in ("slurm", "htcondor"):
        try:
            import dask

            cores = _positive(settings, "cores") or dask.config.get(f"jobqueue.{backend}.cores", None) or 1
            processes = _positive(settings, "processes") or \
                dask.config.get(f"jobqueue.{backend}.processes", None) or cores
        except Exception:  # pragma: no cover - dask is a dependency of the core
            cores = _positive(settings, "cores") or 1
            processes = _positive(settings, "processes") or cores
        cores, processes = int(cores), max(1, int(processes))
        threads = max(1, cores // processes)
        jobs = _positive(settings, "adapt_max") or _positive(settings, "jobs") or \
            _positive(settings, "adapt_min") or 1
        key = "adapt_max" if _positive(settings, "adapt_max") else "jobs"
        return BackendSize(jobs * processes * threads,
                           f"{jobs} jobs x {processes} workers x {threads} thread"
                           f"{'s' if threads != 1 else ''} ({section} {key}, cores, processes)")
    return BackendSize(1, f"1 worker (the size of --dask {backend} is unknown to timecal)")


# --------------------------------------------------------------------------- the report


def memory_request(peak: int) -> int:
    """``peak x MEMORY_MARGIN`` rounded up to what a batch request reads well: 256 MiB steps
    below 4 GiB, whole GiB above."""
    want = peak * MEMORY_MARGIN
    step = 256 * MIB if want < 4 * GIB else GIB
    return max(step, int(math.ceil(want / step)) * step)


def walltime_request(longest: float) -> str:
    """``longest x WALLTIME_MARGIN`` rounded up to whole minutes, as HH:MM:SS (SLURM's
    --time, HTCondor's MaxRuntime in seconds is the same figure)."""
    minutes = max(1, math.ceil(longest * WALLTIME_MARGIN / 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 100:
        return f"{hours:,.0f} CPU-hours"
    if hours >= 1:
        return f"{hours:.1f} CPU-hours"
    return f"{hours:.2f} CPU-hours ({duration(seconds)})"


def duration(seconds: float | None) -> str:
    """Seconds to a tenth below a minute (pilot tasks are often short), H:MM:SS above."""
    if seconds is None:
        return "?"
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def _varying_text(params: Mapping[str, Any], names: Sequence[str]) -> str:
    return " ".join(f"{k}={params[k]}" for k in names)


@dataclass(frozen=True)
class Extrapolation:
    total_tasks: int
    remaining: int
    cpu_mean: float
    cpu_max: float
    wall_mean: float
    wall_max: float
    disk_mean: float
    disk_max: float
    peak: int
    longest: float
    size: BackendSize
    fitted: bool = False  # per-task means from the fit over the work axes, not a plain mean

    @property
    def wall_time(self) -> float:
        """Seconds for the remaining tasks on the backend's slots (never less than its
        longest task)."""
        if not self.remaining:
            return 0.0
        return max(self.wall_mean * self.remaining / self.size.slots, self.longest)


def extrapolate(choice: PilotChoice, measured: Sequence[Measured], total_tasks: int,
                remaining: int, size: BackendSize) -> Extrapolation | None:
    """From the pilot tasks to the grid: per task, the grid's mean from a fit over the work
    axes (:func:`grid_average`) and, as a bound, every task like the pilot's most expensive."""
    ran = [m for m in measured if m.runtime is not None]
    if not ran:
        return None

    def average(attr: str) -> tuple[float, float, bool]:
        got = {m.task_id: float(getattr(m, attr)) for m in ran if getattr(m, attr) is not None}
        if not got:
            return 0.0, 0.0, False
        value, fitted = grid_average(choice, got)
        return value, max(got.values()), fitted

    cpu, cpu_max, fitted = average("cpu")
    wall, wall_max, _ = average("steps_wall" if all(m.steps_wall is not None for m in ran) else "runtime")
    disk, disk_max, _ = average("disk")
    peak = max((m.peak_rss for m in ran if m.peak_rss is not None), default=0)
    longest = max(m.runtime for m in ran)  # the attempt's, start-up included: for requests
    return Extrapolation(total_tasks, remaining, cpu, cpu_max, wall, wall_max, disk, disk_max,
                         peak, longest, size, fitted)


def render_report(choice: PilotChoice, measured: Sequence[Measured], total_tasks: int,
                  remaining: int, size: BackendSize, layout: str | None = None,
                  free: int | None = None, where: Path | None = None, layouts: Sequence[str] = ()) -> str:
    """Per pilot task what it took, then the whole grid's cost and the requests to make.
    The disk is that of the pilot's outputs, in the production's ``layout``; with ``free``
    (bytes free on the file system of ``where``, the production) a grid that will not fit
    gets a warning."""
    by_id = {m.task_id: m for m in measured}
    rows = []
    for t in choice.tasks:
        m = by_id.get(t.task_id) or Measured(t.task_id, t.dirname)
        rows.append((t.task_id, choice.roles.get(t.task_id, ""), _varying_text(t.params, choice.varying),
                     duration(m.runtime),
                     f"{m.cpu:.1f} s" if m.cpu is not None else "?", format_bytes(m.peak_rss),
                     format_bytes(m.output)))
    lines = [f"BXRun: pilot: {len(choice.tasks)} of {total_tasks} tasks, spanning "
             + (", ".join(choice.work_axes) or "the grid")
             + ("" if choice.declared or not choice.work_axes else
                " (no parameter is declared as changing the work: every varying one)") + ":",
             render_table(("task", "chosen as", "parameters", "runtime", "CPU", "peak RSS", "output"),
                          rows)]
    largest = next((t for t in choice.tasks if t.task_id == choice.largest), None)
    if largest is not None:
        m = by_id.get(largest.task_id)
        took = f": {duration(m.runtime)}, peak RSS {format_bytes(m.peak_rss)}" \
            if m and m.runtime is not None else ""
        lines.append(f"BXRun: the {'largest work' if choice.declared else 'largest values'}: "
                     f"{largest.task_id} "
                     f"({_varying_text(largest.params, choice.work_axes) or 'the only task'}){took}")
    ex = extrapolate(choice, measured, total_tasks, remaining, size)
    if ex is None:
        lines.append("BXRun: no pilot task recorded its resources: nothing to extrapolate")
        return "\n".join(lines)
    lines += [
        f"BXRun: extrapolated to the whole grid ({total_tasks} tasks, {remaining} still to run; "
        + (f"per task: the pilot fitted over {', '.join(choice.work_axes)} at the grid's mean"
           if ex.fitted else "per task: the pilot's mean")
        + "; at most: every task like the pilot's costliest):",
        f"  CPU time     {_hours(ex.cpu_mean * total_tasks)} (at most {_hours(ex.cpu_max * total_tasks)})",
        f"  wall time    {format_duration(ex.wall_time)} for the {remaining} remaining tasks on "
        f"{ex.size.slots} slot{'s' if ex.size.slots != 1 else ''}: {ex.size.text}",
        f"  disk         {format_bytes(ex.disk_mean * total_tasks)} for all outputs "
        f"(at most {format_bytes(ex.disk_max * total_tasks)})"
        + (f", layout {layout}" if layout else ""),
        f"  memory       request {format_bytes(memory_request(ex.peak))} per task "
        f"(peak RSS {format_bytes(ex.peak)} x {MEMORY_MARGIN:g}, rounded up)",
        f"  walltime     request {walltime_request(ex.longest)} per task "
        f"(longest {duration(ex.longest)} x {WALLTIME_MARGIN:g}, rounded up to minutes)",
    ]
    lines += disk_warnings(measured, ex, layout, free, where, layouts)
    return "\n".join(lines)


def disk_warnings(measured: Sequence[Measured], ex: Extrapolation, layout: str | None,
                  free: int | None, where: Path | None, layouts: Sequence[str] = ()) -> list[str]:
    """A pilot measured in another layout than the production's, and a grid whose remaining
    outputs need more than the free space of the production's file system (naming the
    script's other ``layouts``, its default first)."""
    lines = []
    default = layouts[0] if layouts else None
    other = sorted({m.layout or default for m in measured if m.disk is not None} - {layout, None}) \
        if layout else []
    if other:
        lines.append(f"BXRun: note: the pilot's outputs were written in layout {', '.join(other)}, the "
                     f"production's is {layout}: the disk above is theirs (remove the pilot's results "
                     "and rerun it to measure this layout)")
    need = ex.disk_mean * ex.remaining
    if free is not None and need > free:
        # only a smaller layout is worth naming (a compact production is told to free space)
        hint = ("; --layout compact keeps the 2D maps and drops the 1D histograms they repeat "
                "(about a tenth of an emulator output)" if "compact" in layouts and layout != "compact"
                else "; free space there or give an -o on a larger file system")
        lines.append(f"BXRun: warning: the {ex.remaining} remaining tasks will write about "
                     f"{format_bytes(need)} but the file system of {where or 'the production'} has "
                     f"{format_bytes(free)} free{hint}")
    return lines
