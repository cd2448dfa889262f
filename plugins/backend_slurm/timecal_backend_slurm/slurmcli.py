"""The SLURM client commands, called with argument lists and their answers parsed.

dask-jobqueue submits through ``sbatch`` asynchronously, so a rejected job only shows up as
a log line; these calls let the backend ask SLURM itself before and while it runs.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime

from timecal_core.batch import supervision
from timecal_core.contract.errors import UserError

REQUIRED = ("sbatch", "squeue", "scancel")

#: States after which the job's processes are gone (or going): its worker cannot connect any more.
ENDED = frozenset({"COMPLETING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
                   "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT",
                   "REVOKED"})


def require_commands() -> None:
    supervision.require_commands("slurm", "SLURM", REQUIRED, "; run BXRun on a SLURM login node (or load its slurm module)")


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"'{' '.join(argv[:2])}' did not answer within {timeout:.0f} s: "
                        f"is the SLURM controller up? (try 'scontrol ping')") from None


def _errors(text: str) -> str:
    """The scheduler's own error lines, joined into one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    picked = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()] or lines
    return "; ".join(picked)


def validate_job_script(script_path: str, what: str) -> None:
    """``sbatch --test-only``: SLURM validates partition, account, memory, time and extra
    directives of the real job script without queueing it. Its refusal becomes a UserError
    carrying SLURM's own message."""
    done = _run(["sbatch", "--test-only", script_path])
    if done.returncode != 0:
        raise UserError(f"SLURM rejects the worker job ({what}): {_errors(done.stderr + done.stdout)}")


@dataclass(frozen=True)
class QueueRow:
    job_id: str
    state: str
    reason: str
    elapsed: str  # as squeue prints it, e.g. 1:02:03
    seconds: int
    started: float | None  # epoch seconds the job started running, None while pending
    limit: str = ""  # its time limit as SLURM prints it, e.g. 1:00:00 (squeue %l, sacct Timelimit)


def parse_elapsed(text: str) -> int:
    """squeue's %M ([days-][hours:]minutes:seconds) in seconds; 0 when not running."""
    text = text.strip()
    if not text or not text[0].isdigit():
        return 0
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


SQUEUE_FORMAT = "%i|%T|%r|%M|%S|%l"


def _started(state: str, start: str) -> float | None:
    if state == "PENDING":
        return None
    try:
        return datetime.fromisoformat(start).timestamp()
    except ValueError:  # N/A, Unknown, None
        return None


def parse_squeue(text: str) -> dict[str, QueueRow]:
    rows = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 5:  # without the time limit
            fields.append("")
        if len(fields) != 6:
            continue
        job_id, state, reason, elapsed, start, limit = fields
        reason = "" if reason == "None" else reason
        rows[job_id] = QueueRow(job_id, state, reason, elapsed, parse_elapsed(elapsed),
                                _started(state, start), limit)
    return rows


SACCT_FIELDS = "JobIDRaw,State,Elapsed,Start,Timelimit"


def parse_sacct(text: str) -> dict[str, QueueRow]:
    """``sacct --parsable2`` lines of whole jobs (``--allocations``). sacct writes
    ``CANCELLED by 1234``: the state is the first word, the rest becomes the reason."""
    rows = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        job_id, state_words, elapsed, start, limit = fields
        state, _, reason = state_words.partition(" ")
        rows[job_id] = QueueRow(job_id, state, reason, elapsed, parse_elapsed(elapsed),
                                _started(state, start), limit)
    return rows


def squeue(job_ids: list[str]) -> dict[str, QueueRow]:
    """State of the given jobs, including recently ended ones (``--states=all``); a job SLURM
    has already forgotten is simply absent."""
    if not job_ids:
        return {}
    done = _run(["squeue", "--noheader", "--states=all", "--jobs=" + ",".join(job_ids),
                 "--format=" + SQUEUE_FORMAT])
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:  # every id given is unknown (already purged)
            return {}
        raise UserError(f"squeue failed: {_errors(done.stderr)}")
    return parse_squeue(done.stdout)


def sacct(job_ids: list[str]) -> dict[str, QueueRow]:
    """How jobs that squeue has forgotten ended (SLURM keeps them there for ``MinJobAge``,
    300 s by default), from SLURM's accounting. Empty when the site has no accounting
    (``sacct`` missing, or "Slurm accounting storage is disabled") or the ids are unknown."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    done = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs=" + ",".join(job_ids),
                 "--format=" + SACCT_FIELDS])
    if done.returncode != 0:
        return {}
    return parse_sacct(done.stdout)


def scancel(job_ids: list[str]) -> None:
    _run(["scancel", *job_ids])


def release(job_ids: list[str]) -> None:
    """``scontrol release``: held jobs (``scontrol hold``) may run again."""
    done = _run(["scontrol", "release", ",".join(job_ids)])
    if done.returncode != 0:
        raise UserError(f"scontrol release failed: {_errors(done.stderr + done.stdout)}")
