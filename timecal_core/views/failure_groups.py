"""Why tasks fail, seen from the grid: failures grouped by cause and message with the parameter
values each group's tasks share, and parameters ranked by how strongly failures depend on them
(``errors by``: "all 312 oom failures have pileup = 400").

A *failure* here is a task whose last attempt failed: failed for good (``error``), failed and
waiting for its retry (``failed``), or already resubmitted (``pending``/``running`` with the
reason of its failed attempt still recorded), so that a failure shows from its first attempt.

How strongly failures depend on a parameter is measured by one number, the *score*: the total
variation distance between how the failing tasks spread over the parameter's values and how
all tasks do, ``1/2 * sum_v |F_v/F - N_v/N|``. It is 0 when failures spread like the tasks (the
parameter tells nothing), and close to 1 when all failures sit at values few tasks have. It
does not depend on how many tasks a value has, which a raw failure fraction per value does.

Pure computation over rows and a :class:`~timecal_core.views.selection.ParameterSpace`: the driver's
Control and ``BXRun --status`` both call it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..ledger.records import ERROR, FAILED, PENDING, RUNNING
from ..textformat import render_table
from .selection import ParameterSpace, format_value

UNCLASSIFIED = "failed"  # the cause shown for an attempt recorded without one
CONFINED = 2  # failures per value, at least, for a subset of values to be called a region


class TaskFacts(NamedTuple):
    """What the maps and failure statistics read of a task (a light ledger row)."""

    task_id: str
    state: str
    reason: str | None
    cause: str | None = None
    start: float | None = None
    end: float | None = None
    cpu: float | None = None
    maxrss_kib: float | None = None
    updated: float | None = None

    @property
    def runtime(self) -> float | None:
        return self.end - self.start if self.start is not None and self.end is not None else None


#: the columns each use reads (fewer columns, faster reads at 30,000 tasks); the maps' and
#: the orderings' rows are plain tuples in this order, the failures' TaskFacts
FACTS_FOR = {
    "states": ("task_id", "state", "reason"),
    "failed": ("task_id", "state", "reason"),
    "rss": ("task_id", "state", "reason", "maxrss_kib"),
    "cpu": ("task_id", "state", "reason", "cpu"),
    "runtime": ("task_id", "state", "reason", "start", "end"),
    "order": ("task_id", "state", "updated"),
    "failures": ("task_id", "state", "reason", "cause"),
}


def task_facts(ledger: Any, failures_only: bool = False, use: str = "failures") -> list:
    """Every task's facts (or those of the tasks whose last attempt failed), fast: no
    parameters decoded, no sorting, only the columns ``use`` needs (see FACTS_FOR): plain
    tuples (30,000 objects fewer), TaskFacts for ``failures``."""
    rows = ledger.columns(FACTS_FOR[use], failures_only=failures_only)
    if use != "failures":
        return rows
    return [TaskFacts(*r) for r in rows]


def is_failure(row: Any) -> bool:
    """Did the task's last attempt fail (whether or not it waits for, or runs, a retry)?"""
    return row.state in (FAILED, ERROR) or (row.state in (PENDING, RUNNING) and row.reason is not None)


def cause_of(row: Any) -> str:
    return getattr(row, "cause", None) or UNCLASSIFIED


@dataclass
class FailureGroup:
    cause: str
    reason: str
    task_ids: list[str] = field(default_factory=list)
    waiting: int = 0  # of which not failed for good (a retry waits or runs)
    shared: dict[str, Any] = field(default_factory=dict)  # varying parameter -> common value

    @property
    def count(self) -> int:
        return len(self.task_ids)

    def as_dict(self) -> dict:
        return {"cause": self.cause, "reason": self.reason, "count": self.count,
                "waiting": self.waiting, "example": min(self.task_ids),
                "shared": shared_text(self.shared)}


def shared_values(task_ids: Iterable[str], space: ParameterSpace) -> dict[str, Any]:
    """The varying parameters on which all ``task_ids`` agree, with that value."""
    ids = list(task_ids)
    out = {}
    for name in space.varying:
        values = set(map(space.getter(name), ids))
        if len(values) == 1:
            out[name] = values.pop()
    return out


def shared_text(shared: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in shared.items())


def failure_groups(rows: Iterable[Any], space: ParameterSpace) -> list[FailureGroup]:
    """Failures grouped by (cause, reason), commonest first, with what each group shares."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    for row in rows:
        if not is_failure(row):
            continue
        key = (cause_of(row), row.reason or "?")
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(*key)
        group.task_ids.append(row.task_id)
        group.waiting += row.state != ERROR
    out = sorted(groups.values(), key=lambda g: (-g.count, g.cause, g.reason))
    for group in out:
        group.shared = shared_values(group.task_ids, space) if group.count > 1 else {}
    return out


def render_failure_groups(groups: Sequence[Mapping]) -> str:
    """``errors``: one row per (cause, message), then the values its tasks share."""
    if not groups:
        return "no failed tasks"
    rows = [(g["count"], g["waiting"] or "", g["cause"], g["example"], g["reason"]) for g in groups]
    lines = render_table(("count", "to retry", "cause", "example", "error"), rows).split("\n")
    out = lines[:2]
    for line, group in zip(lines[2:], groups):
        out.append(line)
        if group.get("shared"):
            out.append(f"    all {group['count']} have {group['shared']}")
    return "\n".join(out)


# ---------------------------------------------------------------------- errors by
@dataclass
class Dependence:
    """How the failures of one cause spread over one parameter's values."""

    name: str
    score: float
    per_value: list[tuple[Any, int, int]]  # (value, failed, tasks), worst fraction first
    subset: list[Any]  # the values every failure has, when fewer than all values


def population_counts(space: ParameterSpace, population: Sequence[str] | None,
                      excluded: Sequence[str] = ()) -> dict:
    """Parameter -> value -> tasks of ``population`` (default: every task but ``excluded``),
    counted once for every cause; every task's counts are cached, so leaving out the few
    not run yet costs a count of those few only."""
    if population is not None:
        return {name: space.value_counts(name, population) for name in space.varying}
    out = {}
    for name in space.varying:
        counts = dict(space.value_counts(name))
        for value, n in space.value_counts(name, excluded).items():
            counts[value] = counts.get(value, 0) - n
        out[name] = {v: n for v, n in counts.items() if n > 0}
    return out


def rank_parameters(failing: Sequence[str], space: ParameterSpace,
                    population: Sequence[str] | None = None,
                    counts: Mapping[str, Mapping[Any, int]] | None = None) -> list[Dependence]:
    """The varying parameters, those failures depend on most first; ``population``: the
    tasks considered (default: all of them), ``counts`` their :func:`population_counts`."""
    out = []
    counts = counts if counts is not None else population_counts(space, population)
    n_all = sum(next(iter(counts.values()), {}).values()) or 1
    n_fail = len(failing) or 1
    for name in space.varying:
        tasks = counts[name]
        fails = space.value_counts(name, failing)
        score = 0.5 * sum(abs(fails.get(v, 0) / n_fail - n / n_all) for v, n in tasks.items())
        per_value = sorted(((v, fails.get(v, 0), n) for v, n in tasks.items()),
                           key=lambda r: (-r[1] / r[2], -r[1]))
        axis_values = [v for v in space.axes[name].values if v in tasks]
        subset = [v for v in axis_values if fails.get(v, 0)]
        # a region, not chance: fewer values than all, and on average at least CONFINED
        # failures each (20 scattered failures also miss some of 30 thresholds)
        region = len(subset) < len(axis_values) and len(failing) >= CONFINED * len(subset)
        out.append(Dependence(name, score, per_value, subset if region else []))
    order = {name: k for k, name in enumerate(space.varying)}
    out.sort(key=lambda d: (-round(d.score, 9), order[d.name]))
    return out


def describe_subset(name: str, subset: Sequence[Any], space: ParameterSpace) -> str:
    """``pileup = 400``, ``threshold >= 8000``, ``delay <= 2``, ``subdet in {EHH, PS}``."""
    if len(subset) == 1:
        return f"{name} = {format_value(subset[0])}"
    axis = space.axes[name]
    values = list(axis.values)
    index = [values.index(v) for v in subset]
    if axis.numeric and index == list(range(index[0], index[-1] + 1)):
        if index[-1] == len(values) - 1:
            return f"{name} >= {format_value(subset[0])}"
        if index[0] == 0:
            return f"{name} <= {format_value(subset[-1])}"
        return f"{format_value(subset[0])} <= {name} <= {format_value(subset[-1])}"
    shown = ", ".join(format_value(v) for v in subset[:6]) + (", ..." if len(subset) > 6 else "")
    return f"{name} in {{{shown}}}"


def headline(cause: str, count: int, ranking: Sequence[Dependence], space: ParameterSpace) -> str:
    """One sentence: where the failures of one cause are."""
    confined = [d for d in ranking if d.subset]
    label = "" if cause == UNCLASSIFIED else f"{cause} "
    what = f"{count} {label}failure{'s' if count != 1 else ''}"
    if not confined:
        return (f"the {what} are scattered: no region of the grid holds them all"
                if count > 1 else f"1 {label}failure")
    where = " and ".join(describe_subset(d.name, d.subset, space) for d in confined[:3])
    return f"all {what} have {where}" if count > 1 else f"the {what} has {where}"


def render_ranking(rows: Iterable[Any], space: ParameterSpace, population: Sequence[str] | None = None,
                   width: int = 80, top: int = 6, excluded: Sequence[str] = ()) -> str:
    """``errors by``: per cause, the headline and the parameters ranked by score.
    ``population``: the tasks compared with (default every task but ``excluded``, e.g.
    :meth:`Ledger.not_run`)."""
    rows = list(rows)
    population = list(population) if population is not None else None
    by_cause: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if is_failure(row):
            by_cause[cause_of(row)].append(row.task_id)
    if not by_cause:
        return "no failed tasks"
    if not space.varying:
        return "no parameter varies in this production: nothing to rank"
    total = sum(len(v) for v in by_cause.values())
    n_all = len(population) if population is not None else len(space.params) - len(excluded)
    lines = [f"{total} of {n_all} tasks that ran failed (last attempt). score: how unevenly a",
             "cause's failures spread over a parameter's values (0: like all tasks, 1: all at",
             "values few tasks have); per value: failed/tasks, worst first"]
    causes = sorted(by_cause.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    if len(causes) > 1:
        causes.append(("any cause", [t for _, ids in causes for t in ids]))
    namew = max(len(n) for n in space.varying)
    counts = population_counts(space, population, excluded)
    for cause, failing in causes:
        ranking = rank_parameters(failing, space, population, counts)
        title = "failures (no cause recorded)" if cause == UNCLASSIFIED else cause
        lines += ["", f"{title}: {len(failing)} task{'s' if len(failing) != 1 else ''}"]
        if cause != "any cause":  # the causes' own sentences say where; their sum would blur it
            lines.append("  " + headline(cause, len(failing), ranking, space))
        for dep in ranking[:top]:
            head = f"  {dep.name.ljust(namew)} {dep.score:4.2f} "
            parts, used = [], len(head)
            for value, failed, n in dep.per_value:
                part = f" {format_value(value)}: {failed}/{n}" + (f" {100 * failed / n:.0f}%" if failed else "")
                if used + len(part) > width - 4 and parts:
                    parts.append(" ...")
                    break
                parts.append(part)
                used += len(part)
            lines.append(head + "".join(parts))
    return "\n".join(lines)
