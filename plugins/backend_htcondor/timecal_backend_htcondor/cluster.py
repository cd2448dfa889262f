"""An ``HTCondorCluster`` watched through the schedd: HTCondor's side of the supervision
that ``timecal_core.batch.supervision`` shares between batch systems (which job states are queued,
held, running or ended; which holds and removals mean out of memory or out of time; how
to remove and release; where a job's stderr goes).

HTCondor holds a job rather than failing it (an output directory it cannot write, a
policy, over its memory request): held jobs are reported with their HoldReason and
replaced; past ``max_replacements`` they stay held for the user to ``release`` (after
fixing the cause) or ``remove`` from the monitor.

Out of memory and out of time have no job state of their own: HTCondor holds the job with a
HoldReasonCode (34: over its memory request; 46/47: ``allowed_job_duration`` /
``allowed_execute_duration``), or a site's or the user's ``periodic_hold`` /
``periodic_remove`` policy fires (code 3 or 26, or a RemoveReason naming the expression).
A policy says what it tests only in its words, so those are read: an expression on
``MemoryUsage``/``ResidentSetSize`` is memory, one on ``time()``/``JobCurrentStartDate``/
``MaxRuntime``/``RemoteWallClockTime`` is run time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from timecal_core.batch.settings import BatchSettings
from timecal_core.batch.supervision import (BatchRunningCluster, ENDED, HELD, JobStatus, QUEUED,
                                            RUNNING)
from timecal_core.ledger.failure_causes import OOM, WALLTIME

from .schedd import ScheddClient, format_seconds

PHASES = {"idle": QUEUED, "suspended": QUEUED, "running": RUNNING, "held": HELD,
          "removed": ENDED, "completed": ENDED, "transferring output": ENDED}


#: HoldReasonCodes: JobOutOfResources (the job went over request_memory), and
#: JobDurationExceeded / JobExecuteExceeded (allowed_job_duration / allowed_execute_duration).
MEMORY_HOLD_CODES = frozenset({34})
TIME_HOLD_CODES = frozenset({46, 47})
#: JobPolicy (periodic_hold, on_exit_hold) and SystemPolicy (SYSTEM_PERIODIC_HOLD): the
#: policy's expression or reason text says what was exceeded.
POLICY_HOLD_CODES = frozenset({3, 26})
MEMORY_WORDS = re.compile(r"memory|ResidentSetSize|ImageSize|\bRSS\b|\bOOM\b", re.I)
TIME_WORDS = re.compile(r"run ?time|wall ?(clock|time)|duration|time ?limit|time\(\)|JobCurrentStartDate|"
                        r"JobStartDate|CurrentTime|EnteredCurrentStatus", re.I)
#: RemoveReasons written by a periodic_remove policy (the job's own or the site's).
POLICY_REMOVAL = re.compile(r"PeriodicRemove|PERIODIC_REMOVE", re.I)


def _code(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _by_words(text: str) -> str | None:
    if MEMORY_WORDS.search(text):
        return OOM
    if TIME_WORDS.search(text):
        return WALLTIME
    return None


#: The words the ledger records for holds known by their code. Details name no job id, slot
#: or duration, so that ``errors`` shows the 300 tasks held for the same reason as one group
#: (the job ids and HTCondor's full HoldReason are in the production's notes).
CODE_WORDS = {
    34: "HTCondor held the job: over its memory request (code 34): raise [htcondor] memory",
    46: "HTCondor held the job: its allowed_job_duration was exceeded (code 46)",
    47: "HTCondor held the job: its allowed_execute_duration was exceeded (code 47)",
}
SLOT_PREFIX = re.compile(r"^Error from [^:]*: ")  # "Error from slot1@node17.cern.ch: ..."


def cause_of_job(state: str, facts: dict) -> tuple[str, str] | None:
    """``(cause, detail)`` for a job that HTCondor held or removed for its memory or its run
    time (``facts``: the ad's HoldReasonCode, HoldReason, RemoveReason...); None otherwise.
    A job removed while held (as supervision does) is judged by that hold: condor_rm moves
    HoldReason* to LastHoldReason*; a hold that was released (ReleaseReason) is not read."""
    for prefix in ("", "Last"):
        if prefix == "Last" and (state != "removed" or "ReleaseReason" in facts):
            break  # a released hold is history: the job ran again since
        code = _code(facts.get(prefix + "HoldReasonCode"))
        reason = SLOT_PREFIX.sub("", " ".join(str(facts.get(prefix + "HoldReason", "")).split()))
        cause = (OOM if code in MEMORY_HOLD_CODES else WALLTIME if code in TIME_HOLD_CODES
                 else _by_words(reason) if code in POLICY_HOLD_CODES else None)
        if cause:
            return cause, CODE_WORDS.get(code) or f"HTCondor held the job: {reason[:200]} (code {code})"
        if code is not None and state == "held":
            return None  # held for another reason (a file, the user)
    removal = " ".join(str(facts.get("RemoveReason", "")).split())
    if state == "removed" and POLICY_REMOVAL.search(removal):
        cause = _by_words(removal)
        if cause:
            return cause, f"HTCondor removed the job: {removal[:200]}"
    return None


class HTCondorRunningCluster(BatchRunningCluster):
    nodes = "execute nodes"

    def __init__(self, cluster, settings: BatchSettings, schedd: ScheddClient | None = None, **kwargs):
        self.schedd = schedd or ScheddClient(settings.own.get("schedd"))
        super().__init__(cluster, settings, "htcondor", **kwargs)

    def query_jobs(self, job_ids: list[str]) -> dict[str, JobStatus]:
        statuses = {}
        for job_id, row in self.schedd.query(job_ids, time.time()).items():
            phase = PHASES.get(row.state, QUEUED)
            statuses[job_id] = JobStatus(job_id, row.state, phase, row.reason,
                                         row.seconds if phase == RUNNING else 0, row.started,
                                         format_seconds(row.seconds), f"schedd {row.schedd}" if row.schedd else "",
                                         facts=row.facts)
        return statuses

    def cause_of(self, status: JobStatus) -> tuple[str, str] | None:
        return cause_of_job(status.state, dict(status.facts))

    def remove_jobs(self, job_ids: list[str], reason: str) -> None:
        self.schedd.remove(job_ids, reason)

    def release_jobs(self, job_ids: list[str]) -> None:
        self.schedd.release(job_ids, "timecal: released from the monitor")

    def log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"worker-{job_id}.err"
