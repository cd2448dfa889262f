"""A production read from its ledger alone, without a cluster: ``BXRun --status`` (the
report, the map of ``--grid X Y``), the status page and the pilot's parameter space. Reads
only (the ledger opened read-only); the wording is :mod:`~timecal_core.views.status_text`'s."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..ledger.records import DONE, ERROR, PLANNED
from ..ledger.sqlite_ledger import Ledger
from ..textformat import format_duration
from .failure_groups import (FACTS_FOR, failure_groups, headline, population_counts,
                             rank_parameters, render_failure_groups, task_facts)
from .heatmap import render_grid
from .selection import ParameterSpace, SelectionError
from .status_text import (describe_left, format_rate, percent, progress_bar, render_counts,
                          render_event)


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

    from ..contract.errors import UserError

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

