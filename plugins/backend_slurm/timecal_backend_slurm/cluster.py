"""A ``SLURMCluster`` watched through ``squeue``: SLURM's side of the supervision that
``timecal_core.batch`` shares between batch systems (which states are queued, held,
running or ended; how to cancel and release; where a job's stderr goes)."""

from __future__ import annotations

from pathlib import Path

from timecal_core.batch import ENDED, HELD, QUEUED, RUNNING, BatchRunningCluster, BatchSettings, JobStatus

from . import slurmcli

#: Pending reasons of a job someone put on hold (``scontrol hold``, an administrator).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})


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
        return {job_id: JobStatus(job_id, row.state, phase_of(row), row.reason,
                                  row.seconds if row.state == "RUNNING" else 0, row.started, row.elapsed)
                for job_id, row in slurmcli.squeue(job_ids).items()}

    def remove_jobs(self, job_ids: list[str], reason: str) -> None:
        slurmcli.scancel(job_ids)

    def release_jobs(self, job_ids: list[str]) -> None:
        slurmcli.release(job_ids)

    def log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"{self.settings.cluster_kwargs['job_name']}-{job_id}.err"
