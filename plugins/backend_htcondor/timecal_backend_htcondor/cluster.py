"""An ``HTCondorCluster`` watched through the schedd: HTCondor's side of the supervision
that ``timecal_core.batch`` shares between batch systems (which job states are queued,
held, running or ended; how to remove and release; where a job's stderr goes).

HTCondor holds a job rather than failing it (an output directory it cannot write, a
policy, over its memory request): held jobs are reported with their HoldReason and
replaced; past ``max_replacements`` they stay held for the user to ``release`` (after
fixing the cause) or ``remove`` from the monitor.
"""

from __future__ import annotations

import time
from pathlib import Path

from timecal_core.batch import ENDED, HELD, QUEUED, RUNNING, BatchRunningCluster, BatchSettings, JobStatus

from .schedd import ScheddClient, format_seconds

PHASES = {"idle": QUEUED, "suspended": QUEUED, "running": RUNNING, "held": HELD,
          "removed": ENDED, "completed": ENDED, "transferring output": ENDED}


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
                                         format_seconds(row.seconds), f"schedd {row.schedd}" if row.schedd else "")
        return statuses

    def remove_jobs(self, job_ids: list[str], reason: str) -> None:
        self.schedd.remove(job_ids, reason)

    def release_jobs(self, job_ids: list[str]) -> None:
        self.schedd.release(job_ids, "timecal: released from the monitor")

    def log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"worker-{job_id}.err"
