"""``BatchRunningCluster.fate_of_worker``: from a lost worker's address to its job and to what
the batch system says of it, asked once per supervision pass for all lost workers together.

What is real: the Dask cluster (a ``LocalCluster``, whose workers connect to a real scheduler
and are recorded by the ``ConnectedWorkers`` scheduler plugin) and the supervision code. The
batch system is a stand-in: a table of job states that the test changes, because jobs on a
real one cannot be made to fail on cue for several workers at once; what SLURM and HTCondor
really answer is tested in test_slurm_production.py and test_htcondor_pool.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from distributed import LocalCluster

from timecal_core.batch.settings import BatchSettings
from timecal_core.batch.supervision import BatchRunningCluster, ENDED, HELD, JobStatus, RUNNING


class TableBatchSystem(BatchRunningCluster):
    """Jobs whose states are a dict; an ended job says ``walltime`` if its state is TIMEOUT,
    a held one ``oom`` if its reason says memory."""

    def __init__(self, cluster, settings):
        self.table: dict[str, JobStatus] = {}
        self.queries: list[list[str]] = []
        super().__init__(cluster, settings, "table", notify=lambda text: None)

    def query_jobs(self, job_ids):
        return {j: self.table[j] for j in job_ids if j in self.table}

    def query_ended_jobs(self, job_ids):
        self.queries.append(sorted(job_ids))
        return self.query_jobs(job_ids)

    def _refill_lost(self):
        return []  # no jobs to submit in place of the "ended" ones: the workers are not gone

    def cause_of(self, status):
        if status.state == "TIMEOUT":
            return "walltime", "out of time"
        if status.phase == HELD and "memory" in status.reason:
            return "oom", "held: over memory"
        return None


@pytest.fixture
def batch(tmp_path):
    cluster = LocalCluster(n_workers=0, processes=False, threads_per_worker=1, dashboard_address=None)
    settings = BatchSettings(section="table", cluster_kwargs={"scheduler_options": {}}, jobs=2, adapt=None,
                             connect_timeout=60, max_replacements=0, scheduler_interface=None,
                             log_directory=Path(tmp_path))
    running = TableBatchSystem(cluster, settings)
    try:
        cluster.scale(2)  # after the ConnectedWorkers plugin, as batch jobs start after it
        deadline = time.monotonic() + 30
        while len(cluster.scheduler.workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The two workers' "jobs": what dask-jobqueue would have recorded as each worker's job id.
        for key, job_id in zip(sorted(cluster.scheduler.workers.values(), key=lambda w: str(w.name)), ("101", "102")):
            running._job_names[job_id] = str(key.name)
        yield running
    finally:
        cluster.close()


def addresses(running) -> dict[str, str]:
    """job id -> the address of the worker that runs in it."""
    by_name = {str(w.name): a for a, w in running.cluster.scheduler.workers.items()}
    return {job: by_name[name] for job, name in running._job_names.items()}


def test_fates_of_lost_workers_are_asked_together_and_kept_once_final(batch):
    where = addresses(batch)
    batch.table = {j: JobStatus(j, "RUNNING", RUNNING) for j in where}
    assert batch.fate_of_worker(where["101"]) is None  # not matched with its job before a supervision pass
    assert batch.queries == []
    batch.supervise()
    batch.queries.clear()
    assert batch.fate_of_worker(where["101"]) is None  # still running: nothing to say yet
    batch.table["101"] = JobStatus("101", "TIMEOUT", ENDED, "TimeLimit")
    batch.table["102"] = JobStatus("102", "CANCELLED", ENDED)
    assert batch.fate_of_worker(where["101"]) is None  # the answer of this pass is kept for the pass
    assert batch.queries == [["101"]]
    batch.supervise()
    batch.queries.clear()
    assert batch.fate_of_worker(where["102"]) is None  # CANCELLED: nothing more than "lost"...
    assert batch.fate_of_worker(where["101"]) == ("walltime", "out of time")
    assert batch.queries == [["101", "102"]]  # ...both asked in one query
    batch.supervise()
    batch.queries.clear()
    assert batch.fate_of_worker(where["101"]) == ("walltime", "out of time")
    assert batch.fate_of_worker(where["102"]) is None
    assert batch.queries == []  # final answers are not asked again
    assert batch.fate_of_worker("tcp://10.9.9.9:1") is None  # no worker of this cluster


def test_a_held_job_removed_since_is_judged_by_its_hold(batch):
    """Supervision removes held jobs (and replaces them); the removed job's own status no
    longer says why it was held, the hold supervision saw does."""
    where = addresses(batch)
    batch.table = {"101": JobStatus("101", "held", HELD, "memory usage exceeded request"),
                   "102": JobStatus("102", "running", RUNNING)}
    batch.supervise()
    batch.table["101"] = JobStatus("101", "removed", ENDED, "via condor_rm")
    batch.supervise()
    assert batch.fate_of_worker(where["101"]) == ("oom", "held: over memory")
    assert batch.fate_of_worker(where["102"]) is None
