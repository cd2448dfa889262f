"""What a failed attempt comes to say: its ledger record (cause and message, from what the
future raised), a full disk met by the driver, and the announcements of tasks failed for
good, once per cause and message (a deterministic failure of 1,000 tasks is two lines)."""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from ..contract.errors import UserError
from ..ledger import failure_causes as causes
from ..ledger.records import Failure


def _short(message: str, limit: int = 120) -> str:
    """A message in a line that goes by (the whole one is in the summary and 'errors')."""
    return message if len(message) <= limit else message[:limit - 3].rstrip() + "..."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_failure(task_id: str, exc: BaseException) -> Failure:
    """Turn what a future raised into a ledger failure with its cause
    (:mod:`timecal_core.ledger.failure_causes`); ``reason`` is the one line that groups similar failures
    in ``errors``. A user error raised inside a task (a value the plan could not check)
    would fail the same way again: it is final, not retried."""
    from distributed.comm import get_address_host
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        worker = getattr(getattr(exc, "last_worker", None), "address", None)
        return Failure(task_id, worker, "worker", None,
                       "the worker running the task died (killed, out of memory or lost)", str(exc),
                       cause=causes.NODE,
                       resources={"worker": worker,
                                  "host": get_address_host(worker) if worker else None})
    if isinstance(exc, UserError):
        return Failure(task_id, None, "user", None, causes.error_sentence(f"user error: {exc}"),
                       str(exc), final=True, cause=causes.USER)
    if hasattr(exc, "step") and hasattr(exc, "log_tail"):
        tail = exc.log_tail or ""
        code = getattr(exc, "exit_code", None)
        resources = dict(getattr(exc, "resources", None) or {})
        cause = getattr(exc, "cause", None) or causes.step_cause(code, None)
        last = causes.error_sentence(tail)
        if cause == causes.USER:
            return Failure(task_id, resources.get("worker"), exc.step, None,
                           last or "user error", tail, final=True, cause=cause,
                           resources=resources)
        if cause == causes.OOM:
            limit = re.search(r"> limit (\d+ MiB)", tail)
            cgroup = re.search(r"killed by the kernel in the job's memory cgroup \(limit (\d+ MiB)\)", tail)
            if cgroup:
                reason = f"step {exc.step} out of memory (killed by the kernel at the job's limit of {cgroup[1]})"
            else:
                reason = (f"step {exc.step} out of memory" +
                          (f" (the worker's limit is {limit.group(1)})" if limit else ""))
        elif causes.kind(cause) == "signal":
            number = int(cause.split()[1])
            resources["signal"] = number
            reason = f"step {exc.step} killed by signal {number} ({_signal_name(number)})"
        else:
            reason = f"step {exc.step} " + (f"exited with code {code}" if code is not None else "failed")
            if last:  # the whole message within the limit, the step's words cut if need be
                reason += ": " + causes.error_sentence(tail, causes.MESSAGE_LIMIT - len(reason) - 2)
        return Failure(task_id, resources.get("worker"), exc.step, code, reason, tail, cause=cause,
                       resources=resources)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Failure(task_id, None, None, None, causes.error_sentence(f"{type(exc).__name__}: {exc}"),
                   text[-4000:], cause=causes.TASK)


def disk_full(exc: BaseException, path: Path) -> OSError | None:
    """A full disk met while writing ``path`` (the ledger says "disk is full" through SQLite,
    files through ENOSPC/EDQUOT) as the OSError naming the file, which every command says in
    its one line; None for anything else."""
    import errno

    if isinstance(exc, sqlite3.OperationalError) and "full" not in str(exc):
        return None
    if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return OSError(errno.ENOSPC, "No space left on device", getattr(exc, "filename", None) or str(path))


class ForGoodReports:
    """Says that tasks failed for good through ``say``: the first of each cause and message
    with the message, the others counted (:meth:`counts`, at each tick)."""

    def __init__(self, say: Callable[[str | None, int], None]):
        self.say = say
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}  # (cause, message) -> tasks so far
        self._unsaid: dict[tuple[str, str], int] = {}  # ... not said yet

    def announce(self, exhausted: list[str], failures: dict) -> None:
        """A task failed for good is said once per cause and message: the first with its
        message, the others with the same error counted at the next tick (a deterministic
        failure of 1,000 tasks is two lines, not 1,000)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for tid in exhausted:
            f = failures.get(tid)
            key = (f.cause or causes.step_cause(f.exit_code, None), f.reason) if f else ("?", "?")
            groups.setdefault(key, []).append(tid)
        for key, ids in groups.items():
            with self._lock:
                known = key in self._seen
                self._seen[key] = self._seen.get(key, 0) + len(ids)
                if known:
                    self._unsaid[key] = self._unsaid.get(key, 0) + len(ids)
            if known:
                self.say(None, len(ids))  # counted (mail counts tasks), said at the next tick
                continue
            cause, reason = key
            more = f" (and {len(ids) - 1} more task(s) with the same error)" if len(ids) > 1 else ""
            self.say(f"task {ids[0]} failed for good{more}: {cause}: {_short(reason)}; the same "
                     "failure of other tasks is counted, not listed ('errors' shows it whole)", len(ids))

    def counts(self) -> list[str]:
        """The tick's line per error that failed more tasks for good since it was said."""
        with self._lock:
            unsaid, self._unsaid = self._unsaid, {}
            seen = dict(self._seen)
        return [f"{n} more task(s) failed for good ({seen[key]} in all) with {key[0]}: {_short(key[1])}"
                for key, n in unsaid.items()]
