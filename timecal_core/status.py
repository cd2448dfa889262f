"""How a production's state reads on screen, shared by the interactive shell, the one-line
reports of the non-interactive mode and ``BXRun --status``, so that all three say the same
thing the same way. Pure formatting: nothing here talks to Dask or writes the ledger."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .ledger import DONE, ERROR, PENDING, PLANNED, RUNNING, STATES, Event, Ledger
from .diagnosis import (FACTS_FOR, failure_groups, headline, population_counts,
                        rank_parameters, render_failure_groups, task_facts)
from .gridmap import render_grid
from .selection import ParameterSpace, SelectionError
from .textformat import format_bytes, format_duration, render_table  # noqa: F401 (re-exported)

BAR_WIDTH = 30


@dataclass(frozen=True)
class ClusterInfo:
    """What the monitor shows of the cluster: ``requested`` is what Dask asked for
    (None when unknown), the rest is what is connected right now."""

    workers: int
    requested: int | None
    threads: int
    memory: int  # bytes, summed memory limits
    dashboard: str = ""


@dataclass(frozen=True)
class StatusSnapshot:
    counts: dict[str, int]
    rate: float | None = None  # tasks per second over the recent window
    eta: float | None = None  # seconds
    elapsed: float | None = None
    cluster: ClusterInfo | None = None
    batch_jobs: dict[str, int] = field(default_factory=dict)  # batch state -> count

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def format_rate(rate: float | None) -> str:
    if not rate:
        return "rate ?"
    if rate >= 1:
        return f"{rate:.1f} tasks/s"
    if rate * 60 >= 1:
        return f"{rate * 60:.1f} tasks/min"
    return f"{rate * 3600:.1f} tasks/h"


def percent(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "0.0%"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render_counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return "  ".join(f"{state} {counts.get(state, 0)} ({percent(counts.get(state, 0), total)})"
                     for state in STATES if counts.get(state, 0) or state in (PENDING, RUNNING, DONE))


def describe_left(counts: dict[str, int]) -> str:
    """What the next run of the same command runs: every task not done, by state (failed
    for good and cancelled ones too: a new run gives them a fresh set of attempts)."""
    left = {s: counts.get(s, 0) for s in STATES if s != DONE and counts.get(s, 0)}
    n = sum(left.values())
    if not n:
        return "nothing left to run"
    parts = ", ".join(f"{k} {s}" for s, k in sorted(left.items(), key=lambda item: -item[1]))
    return f"{n} task{'s' if n != 1 else ''} left to run ({parts})"


def render_cluster(info: ClusterInfo | None) -> str:
    if info is None:
        return "cluster: not connected"
    requested = "" if info.requested is None else f" of {info.requested} requested"
    dash = f", dashboard {info.dashboard}" if info.dashboard else ""
    return (f"cluster: {info.workers} workers{requested}, {info.threads} threads, "
            f"{format_bytes(info.memory)} memory{dash}")


def render_status(snap: StatusSnapshot) -> str:
    """The multi-line status block of the shell."""
    done = snap.counts.get(DONE, 0)
    lines = [
        f"tasks: {snap.total}  " + render_counts(snap.counts),
        f"{progress_bar(done, snap.total)} {done}/{snap.total} {percent(done, snap.total)}  "
        f"{format_rate(snap.rate)}  ETA {format_duration(snap.eta)}"
        + (f"  elapsed {format_duration(snap.elapsed)}" if snap.elapsed is not None else ""),
        render_cluster(snap.cluster),
    ]
    if snap.batch_jobs:
        lines.append("batch jobs: " + "  ".join(f"{s} {n}" for s, n in sorted(snap.batch_jobs.items())))
    return "\n".join(lines)


def render_line(snap: StatusSnapshot) -> str:
    """One status line per interval for logs and non-interactive runs."""
    c = snap.counts
    done = c.get(DONE, 0)
    others = " ".join(f"{s} {c.get(s, 0)}" for s in STATES if s != DONE and c.get(s, 0))
    workers = f" | workers {snap.cluster.workers}" if snap.cluster is not None else ""
    return (f"{time.strftime('%H:%M:%S')} done {done}/{snap.total} ({percent(done, snap.total)})"
            f" | {others or 'nothing left'} | {format_rate(snap.rate)} | ETA "
            f"{format_duration(snap.eta)}{workers}")


def count_batch_states(jobs: Sequence) -> dict[str, int]:
    return dict(Counter(job.state for job in jobs))


def render_event(event: Event) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
    who = f"{event.task_id} " if event.task_id else ""
    state = f"{event.state}: " if event.state else ""
    return f"{when}  {who}{state}{event.detail}"


def render_errors(groups: Sequence[Sequence]) -> str:
    """``Ledger.error_groups()`` as a table; tasks already resubmitted are counted apart so
    that a failure is visible from its first attempt, not only once it is final."""
    if not groups:
        return "no failed tasks"
    rows = [(n, f"{waiting}" if waiting else "", cause, example, reason)
            for cause, reason, n, example, waiting in groups]
    return render_table(("count", "to retry", "cause", "example", "error"), rows)


def ledger_space(ledger: Ledger, only: Sequence[str] | None = None) -> ParameterSpace:
    """The production's parameters as the ledger knows them (``BXRun --status`` has no plan:
    types are those of the recorded values). Every task has the same parameters (a plan
    gives each its defaults), so the names come from one row; SQLite extracts the values
    (``only``: of these parameters, all that a map needs; an unknown one is an error)."""
    first = ledger.find("", limit=1)  # by the primary key's index: no scan
    if not first:
        return ParameterSpace({}, {})
    sample = ledger.task(first[0]).params
    names = sorted(sample)
    if only is not None:
        for name in only:
            if name not in sample:
                raise SelectionError(f"{name!r}: not a parameter of this production; parameters: "
                                     f"{', '.join(names)}")
        names = [n for n in names if n in set(only)]
    rows = ledger.columns(["task_id"] + [f"params.{n}" for n in names])
    flags = [k for k, n in enumerate(names, start=1) if isinstance(sample[n], bool)]
    if flags:  # SQLite's JSON reads true/false as 1/0
        rows = [tuple(bool(v) if k in flags and v is not None else v for k, v in enumerate(r))
                for r in rows]
    return ParameterSpace.from_columns(names, rows)


def ledger_grid_text(production_dir, words: Sequence[str], metric: str | None = None) -> str:
    """``BXRun --status -o OUT --grid X Y [FILTER] [--metric M]``: colour only on a terminal
    (and not with NO_COLOR)."""
    import os
    import shutil
    import sys

    from .errors import UserError

    if len(words) < 2:
        raise UserError(f"--grid {' '.join(words)}: give two parameters, X and Y (e.g. --grid "
                        "threshold delay), optionally followed by a filter")
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    ledger = Ledger.open_readonly(production_dir)
    try:
        return render_ledger_grid(ledger, words[0], words[1], metric, words[2:], colour=colour,
                                  width=shutil.get_terminal_size((80, 24)).columns)
    finally:
        ledger.close()


def render_ledger_grid(ledger: Ledger, x: str, y: str, metric: str | None = None,
                       select: Sequence[str] = (), colour: bool = False, width: int = 80) -> str:
    """``BXRun --status --grid X Y``: the map of the ledger's tasks."""
    import re

    space = ledger_space(ledger, only=[x, y] + [m.group(1) for m in map(
        re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*[=<>!]").match, select) if m])
    return render_grid(space, task_facts(ledger, use=metric if metric in FACTS_FOR else "states"), x, y,
                       selection=space.parse(select) if select else None,
                       metric=metric, colour=colour, width=width)


def render_ledger_report(ledger: Ledger, production_dir, events: int = 10, running: bool = True) -> str:
    """``BXRun --status``: the ledger's view without any cluster; ``running``: whether a
    driver works on it now (without one there is no rate to extrapolate, hence no ETA)."""
    counts = ledger.counts()
    total = sum(counts.values())
    done = counts.get(DONE, 0)
    bar = f"{progress_bar(done, total)} {done}/{total} {percent(done, total)}  "
    if running:
        # The rate is measured over the last hour, or since the latest driver started if
        # that is more recent (45 s into a run, an hour-long window would report a tenth).
        now = time.time()
        started = ledger.last_start()
        window = min(3600.0, now - started) if started is not None else 3600.0
        recent = ledger.done_since(now - window) if window > 0 else 0
        rate = recent / window if recent else None
        label = "last hour" if window >= 3600.0 else f"since the driver started {format_duration(window)} ago"
        remaining = total - done - counts.get(ERROR, 0) - counts.get(PLANNED, 0)
        eta = 0.0 if not remaining else (remaining / rate if rate else None)
        bar += f"{format_rate(rate)} ({label})  ETA {format_duration(eta)}"
    elif done < total:
        bar += f"not running: {describe_left(counts)}; BXRun -o {production_dir} goes on"
    lines = [f"production {production_dir}", f"tasks: {total}  " + render_counts(counts), bar]
    failing = task_facts(ledger, failures_only=True, use="failures")
    space = ledger_space(ledger) if failing else None
    groups = failure_groups(failing, space) if failing else []
    if groups:
        lines += ["", "failures:", render_failure_groups([g.as_dict() for g in groups])]
        lines += ["where (BXRun --status --grid X Y draws the map):"]
        by_cause: dict[str, list[str]] = {}
        for g in groups:
            by_cause.setdefault(g.cause, []).extend(g.task_ids)
        counts = population_counts(space, None, ledger.not_run())
        for cause, ids in by_cause.items():
            ranking = rank_parameters(ids, space, None, counts)
            lines.append("  " + headline(cause, len(ids), ranking, space))
    production = ledger.production_events(events)
    if production:
        lines += ["", "production events (runs, batch system):"] + ["  " + render_event(e) for e in production]
    last = ledger.last_events(events)
    if last:
        lines += ["", "last events:"] + ["  " + render_event(e) for e in last]
    return "\n".join(lines)
