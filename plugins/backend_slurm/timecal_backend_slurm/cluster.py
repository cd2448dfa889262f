"""A ``SLURMCluster`` watched through ``squeue``: SLURM's side of the supervision that
``timecal_core.batch.supervision`` shares between batch systems (which states are queued, held,
running or ended; which of them mean out of memory, out of time or a lost node; how to
cancel and release; where a job's stderr goes).

squeue keeps an ended job for ``MinJobAge`` (300 s by default); after that only SLURM's
accounting (``sacct``) knows how it ended, on sites that have accounting."""

from __future__ import annotations

from pathlib import Path

from timecal_core.batch.settings import BatchSettings
from timecal_core.batch.supervision import (BatchRunningCluster, ENDED, HELD, JobStatus, QUEUED,
                                            RUNNING)
from timecal_core.ledger.failure_causes import NODE, OOM, WALLTIME

from . import slurmcli

#: Pending reasons of a job someone put on hold (``scontrol hold``, an administrator).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})


#: SLURM job states that say why a job's worker died: the failure cause of
#: ``timecal_core.ledger.failure_causes`` and the words the ledger records. The words name no job id and no
#: duration, so that ``errors`` shows the 300 tasks that ran out of time as one group (the
#: job ids are in the production's notes). CANCELLED, FAILED, COMPLETED add nothing to "lost".
STATE_CAUSES = {
    "OUT_OF_MEMORY": (OOM, "the SLURM job ran out of memory (OUT_OF_MEMORY): raise [slurm] memory"),
    "TIMEOUT": (WALLTIME, "the SLURM job reached its time limit{limit} (TIMEOUT): raise [slurm] walltime"),
    "DEADLINE": (WALLTIME, "the SLURM job reached its deadline (DEADLINE)"),
    "NODE_FAIL": (NODE, "the SLURM job's node failed (NODE_FAIL)"),
    "BOOT_FAIL": (NODE, "the SLURM job's node failed to boot (BOOT_FAIL)"),
    "PREEMPTED": (NODE, "the SLURM job was preempted (PREEMPTED)"),
}
#: The reasons squeue gives an ended job while it is still COMPLETING, as its final state.
REASON_STATES = {"OutOfMemory": "OUT_OF_MEMORY", "TimeLimit": "TIMEOUT", "DeadLine": "DEADLINE",
                 "NodeDown": "NODE_FAIL"}


def cause_of_row(state: str, reason: str, limit: str = "") -> tuple[str, str] | None:
    """``(cause, detail)`` for a job whose state (or, while COMPLETING, whose reason) says
    it ran out of memory or time or lost its node; None otherwise."""
    final = state if state in STATE_CAUSES else REASON_STATES.get(reason, "")
    if final not in STATE_CAUSES:
        return None
    cause, words = STATE_CAUSES[final]
    return cause, words.format(limit=f" of {limit}" if limit[:1].isdigit() else "")


def phase_of(row: slurmcli.QueueRow) -> str:
    if row.state in slurmcli.ENDED:
        return ENDED
    if row.state == "RUNNING":
        return RUNNING
    if row.state == "PENDING" and row.reason in HELD_REASONS:
        return HELD
    return QUEUED


class SlurmRunningCluster(BatchRunningCluster):
    nodes = "compute nodes"

    def __init__(self, cluster, settings: BatchSettings, **kwargs):
        super().__init__(cluster, settings, "slurm", **kwargs)

    def query_jobs(self, job_ids: list[str]) -> dict[str, JobStatus]:
        return self._statuses(slurmcli.squeue(job_ids))

    def query_ended_jobs(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """squeue, then sacct for the jobs squeue has forgotten (where there is accounting).
        Only for lost workers' jobs: sacct loads the site's accounting database, it is not
        for every monitor interval."""
        rows = slurmcli.squeue(job_ids)
        forgotten = [j for j in job_ids if j not in rows]
        if forgotten:
            rows.update({j: r for j, r in slurmcli.sacct(forgotten).items() if j in forgotten})
        return self._statuses(rows)

    @staticmethod
    def _statuses(rows: dict[str, slurmcli.QueueRow]) -> dict[str, JobStatus]:
        return {job_id: JobStatus(job_id, row.state, phase_of(row), row.reason,
                                  row.seconds if row.state == "RUNNING" else 0, row.started, row.elapsed,
                                  facts={"limit": row.limit})
                for job_id, row in rows.items()}

    def cause_of(self, status: JobStatus) -> tuple[str, str] | None:
        return cause_of_row(status.state, status.reason, str(status.facts.get("limit", "")))

    def settled(self, status: JobStatus) -> bool:
        """COMPLETING comes before the final state (OUT_OF_MEMORY, TIMEOUT...): not yet."""
        return status.phase == ENDED and status.state != "COMPLETING"

    def remove_jobs(self, job_ids: list[str], reason: str) -> None:
        slurmcli.scancel(job_ids)

    def release_jobs(self, job_ids: list[str]) -> None:
        slurmcli.release(job_ids)

    def log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"{self.settings.cluster_kwargs['job_name']}-{job_id}.err"
