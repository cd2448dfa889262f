"""What the ledger holds, as plain values: the task states, one task's row, an event, what
the driver records when an attempt fails or completes, and what reconciling with the disk
found. No SQL here (that is :mod:`~timecal_core.ledger.sqlite_ledger`): the screens and the
engine use these without a connection."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..contract.errors import UserError


PLANNED, PENDING, RUNNING, DONE, FAILED, ERROR, CANCELLED = (
    "planned", "pending", "running", "done", "failed", "error", "cancelled")
#: Every state, in the order status displays them. ``failed`` is retryable (it is resubmitted
#: at the next interval), ``error`` is failed for good (attempts exhausted). ``planned``: in
#: the grid but not submitted by any run yet (the rest of a ``--pilot``, until launched):
#: the ledger always holds the whole planned grid, so that every count is over it.
STATES = (PLANNED, PENDING, RUNNING, DONE, FAILED, ERROR, CANCELLED)
STATE_HELP = {
    PLANNED: "in the grid, not submitted yet (the rest of a pilot: BXRun -o OUT launches it)",
    PENDING: "waiting for a worker",
    RUNNING: "executing on a worker",
    DONE: "complete on disk",
    FAILED: "failed, will be retried at the next interval",
    ERROR: "failed for good (attempts exhausted)",
    CANCELLED: "cancelled by the user",
}


#: What an attempt records of the resources it used and where it ran (the keys of
#: ``Completion.resources``/``Failure.resources``, the provenance in params.json).
RESOURCE_KEYS = ("worker", "host", "job_id", "start", "end", "cpu", "maxrss_kib", "output_bytes",
                 "signal")


class LedgerUnavailable(UserError):
    """The ledger is missing, corrupt or from an incompatible version; rebuildable from disk."""


def rebuild_hint(production_dir: Path) -> str:
    return f"rebuild it from the results on disk with: BXRun --rebuild-ledger -o {production_dir}"


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    dirname: str
    params: dict
    state: str
    attempts: int
    worker: str | None
    start: float | None
    end: float | None
    exit_code: int | None
    step: str | None
    reason: str | None
    error: str | None
    updated: float
    host: str | None = None
    job_id: str | None = None
    cpu: float | None = None  # seconds of CPU (user+sys) of the steps of the last attempt
    maxrss_kib: int | None = None  # peak RSS of the steps of the last attempt
    output_bytes: int | None = None
    signal: int | None = None
    cause: str | None = None  # of the last failure (timecal_core.ledger.failure_causes)

    @property
    def runtime(self) -> float | None:
        """Of the last attempt; a running task's so far."""
        if self.start is None:
            return None
        if self.state == RUNNING:
            return max(0.0, time.time() - self.start)
        if self.end is None or self.end < self.start:
            return None
        return self.end - self.start

    @property
    def attempt(self) -> int:
        """The attempt shown to the user: a running task runs its next one."""
        return self.attempts + (1 if self.state == RUNNING else 0)


@dataclass(frozen=True)
class Event:
    time: float
    task_id: str | None
    state: str | None
    detail: str


@dataclass(frozen=True)
class Failure:
    """What the driver records when an attempt fails."""

    task_id: str
    worker: str | None
    step: str | None
    exit_code: int | None
    reason: str  # one line, used to group failures
    error: str  # the last log lines
    #: Retrying cannot help (a user error raised by the task): failed for good at once.
    final: bool = False
    cause: str | None = None  # timecal_core.ledger.failure_causes vocabulary; None: derived from the rest
    #: RESOURCE_KEYS known of the attempt, and "software" (a dict)
    resources: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Completion:
    task_id: str
    worker: str | None
    start: float | None
    end: float | None
    resources: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ReconcileReport:
    new: int = 0
    found_done: int = 0  # complete on disk, not (yet) done in the ledger: e.g. driver killed
    lost: int = 0  # done in the ledger but the result is gone from disk
    requeued: int = 0  # running/failed/error/cancelled from a previous run, pending again
    dropped: int = 0  # no longer in the grid

    def describe(self) -> str:
        parts = [f"{n} {label}" for n, label in (
            (self.found_done, "found complete on disk"), (self.lost, "lost from disk, rerun"),
            (self.requeued, "resumed from the previous run"),
            (self.dropped, "no longer in the grid, dropped")) if n]
        return ", ".join(parts)
