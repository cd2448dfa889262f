"""How a production's state reads on screen, shared by the interactive shell, the one-line
reports of the non-interactive mode and ``BXRun --status``, so that all three say the same
thing the same way. Pure formatting: nothing here talks to Dask or writes the ledger."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .ledger import DONE, ERROR, PENDING, RUNNING, STATES, Event, Ledger

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


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def format_rate(rate: float | None) -> str:
    if not rate:
        return "rate ?"
    if rate >= 1:
        return f"{rate:.1f} tasks/s"
    if rate * 60 >= 1:
        return f"{rate * 60:.1f} tasks/min"
    return f"{rate * 3600:.1f} tasks/h"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def percent(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "0.0%"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render_counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return "  ".join(f"{state} {counts.get(state, 0)} ({percent(counts.get(state, 0), total)})"
                     for state in STATES if counts.get(state, 0) or state in (PENDING, RUNNING, DONE))


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


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (no box drawing: it is pasted into e-mails and logs)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


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


def render_ledger_report(ledger: Ledger, production_dir, events: int = 10) -> str:
    """``BXRun --status``: the ledger's view without any cluster."""
    counts = ledger.counts()
    total = sum(counts.values())
    done = counts.get(DONE, 0)
    # The rate is measured over the last hour, or since the latest driver started if that
    # is more recent (45 s into a run, an hour-long window would report a tenth of the rate).
    now = time.time()
    started = ledger.last_start()
    window = min(3600.0, now - started) if started is not None else 3600.0
    recent = ledger.done_since(now - window) if window > 0 else 0
    rate = recent / window if recent else None
    label = "last hour" if window >= 3600.0 else f"since the driver started {format_duration(window)} ago"
    remaining = total - done - counts.get(ERROR, 0)
    eta = 0.0 if not remaining else (remaining / rate if rate else None)
    lines = [f"production {production_dir}",
             f"tasks: {total}  " + render_counts(counts),
             f"{progress_bar(done, total)} {done}/{total} {percent(done, total)}  "
             f"{format_rate(rate)} ({label})  ETA {format_duration(eta)}"]
    groups = ledger.error_groups()
    if groups:
        lines += ["", "failures:", render_errors(groups)]
    production = ledger.production_events(events)
    if production:
        lines += ["", "production events (runs, batch system):"] + ["  " + render_event(e) for e in production]
    last = ledger.last_events(events)
    if last:
        lines += ["", "last events:"] + ["  " + render_event(e) for e in last]
    return "\n".join(lines)
