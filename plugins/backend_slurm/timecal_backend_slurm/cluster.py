"""A ``SLURMCluster`` watched through ``squeue``.

dask-jobqueue only learns about a job through its Dask worker: a job that dies before the
worker connects (bad prologue, node failure, scheduler unreachable) keeps its slot forever
and the production silently runs on fewer workers (dask-jobqueue issues #643 and #620).
``supervise`` compares what SLURM says about every job with which workers ever connected,
reports what went wrong in one line, and replaces such jobs up to ``max_replacements``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from distributed.diagnostics.plugin import SchedulerPlugin

from timecal_core.backends import BatchJob, RunningCluster
from timecal_core.errors import UserError

from . import slurmcli
from .settings import SlurmSettings


class ConnectedWorkers(SchedulerPlugin):
    """When each worker name last reached the scheduler, so that a worker which came and went
    between two monitor intervals still counts, and a replacement job reusing a name is judged
    by its own worker (connected after the job started), not by its predecessor's."""

    name = "timecal-connected-workers"

    def __init__(self):
        self._connected: dict[str, float] = {}
        self._lock = threading.Lock()

    def add_worker(self, scheduler, worker: str) -> None:
        with self._lock:
            self._connected[str(scheduler.workers[worker].name)] = time.time()

    def since(self, job_name: str, started: float | None) -> bool:
        """Did a worker of this job connect (after ``started``, when known)? With
        ``processes > 1`` the job's workers are named ``job-0``, ``job-1``..."""
        after = (started or 0) - 2  # squeue's start time has one-second resolution
        with self._lock:
            return any(t >= after for n, t in self._connected.items()
                       if n == job_name or n.startswith(job_name + "-"))


class SlurmRunningCluster(RunningCluster):
    def __init__(self, cluster, settings: SlurmSettings):
        super().__init__(cluster, "slurm")
        self.settings = settings
        self.connected = ConnectedWorkers()
        cluster.scheduler.add_plugin(self.connected)
        self._job_names: dict[str, str] = {}  # every job id this cluster submitted -> its worker name
        self._handled: set[str] = set()  # job ids whose end was already reported
        self.replacements = 0
        self._gave_up = False

    # ----------------------------------------------------------------- bookkeeping
    @property
    def advertised_address(self) -> str:
        scheduler = self.cluster.scheduler
        return getattr(scheduler, "contact_address", None) or scheduler.address

    def _advertised(self) -> str:
        """Where the advertised address comes from, for the user to change it."""
        if self.settings.cluster_kwargs["scheduler_options"].get("contact_address"):
            source = "[slurm] contact_address"
        elif self.settings.scheduler_interface:
            source = f"interface {self.settings.scheduler_interface}"
        else:
            source = "this host's default interface"
        return f"{self.advertised_address} (advertised from {source})"

    def _live_jobs(self) -> dict[str, str]:
        """worker name -> job id of the jobs dask-jobqueue currently holds (submitted ones)."""
        live = {}
        for name, job in list(self.cluster.workers.items()):
            job_id = getattr(job, "job_id", None)
            if job_id:
                live[str(name)] = job_id
                self._job_names[job_id] = str(name)
        return live

    def _log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"{self.settings.cluster_kwargs['job_name']}-{job_id}.err"

    def _forget(self, name: str, replace: bool) -> None:
        """Drop a dead job from the cluster's books; with ``replace`` submit a new one in its
        place. Runs on the cluster's event loop, where SpecCluster changes its state."""
        cluster = self.cluster

        def on_loop():
            target = len(cluster.worker_spec)
            cluster.workers.pop(name, None)
            cluster.worker_spec.pop(name, None)
            if replace:
                cluster.scale(jobs=target)

        cluster.loop.add_callback(on_loop)

    def _replace_failed(self, name: str) -> str:
        """Replace a job that failed without a worker; past the limit stop scaling up."""
        if self.replacements >= self.settings.max_replacements:
            if not self._gave_up:
                self._gave_up = True
                adaptive = getattr(self.cluster, "_adaptive", None)
                if adaptive is not None:  # it would resubmit what we just dropped
                    adaptive.stop()
            self._forget(name, replace=False)
            return (f"not replaced: {self.replacements} jobs already replaced "
                    f"([slurm] max_replacements = {self.settings.max_replacements}); fix the cause")
        self.replacements += 1
        self._forget(name, replace=True)
        return f"replaced ({self.replacements}/{self.settings.max_replacements})"

    def _never_connected_message(self, job_id: str, name: str, seconds: int) -> str:
        return (f"slurm job {job_id} ({name}) has run {seconds} s but its Dask worker never reached "
                f"the scheduler at {self._advertised()}; set "
                f"[slurm] scheduler_interface (or contact_address) to an address the compute nodes "
                f"can reach; worker log: {self._log_path(job_id)}")

    # ----------------------------------------------------------------- start-up
    def await_first_worker(self, queue_grace: float = 10.0, poll: float = 1.0) -> None:
        """Return once a worker connects, or once every job has waited ``queue_grace`` seconds
        in the queue (a busy queue is normal: the monitor shows SLURM's pending reason).
        Raise UserError when the jobs cannot work at all: they all end, or one runs for
        ``connect_timeout`` without its worker connecting. A broken set-up thus fails within
        minutes with the reason, instead of leaving a production waiting forever."""
        timeout = self.settings.connect_timeout
        started = time.monotonic()
        while not self.cluster.scheduler.workers:
            waited = time.monotonic() - started
            live = self._live_jobs()
            if not live:
                if waited > timeout:
                    raise UserError(f"no SLURM job was submitted within {timeout:.0f} s (sbatch failing "
                                    f"in the background?); see the log of this production")
                time.sleep(poll)
                continue
            rows = slurmcli.squeue(list(live.values()))
            for name, job_id in live.items():
                row = rows.get(job_id)
                if row is not None and row.state == "RUNNING" and row.seconds > timeout:
                    raise UserError(self._never_connected_message(job_id, name, row.seconds))
            if all(rows.get(j) is None or rows[j].state in slurmcli.ENDED for j in live.values()):
                name, job_id = next(iter(live.items()))
                state = rows[job_id].state if job_id in rows else "gone from squeue"
                raise UserError(f"slurm job {job_id} ({name}) ended ({state}) before its Dask worker "
                                f"connected{self._last_log_line(job_id)}; see {self._log_path(job_id)}")
            if waited > queue_grace and all(rows[j].state == "PENDING" for j in live.values() if j in rows):
                return
            time.sleep(poll)

    def _last_log_line(self, job_id: str) -> str:
        """The last line the job wrote to its stderr (often the failing prologue command)."""
        try:
            lines = [ln.strip() for ln in self._log_path(job_id).read_text().splitlines() if ln.strip()]
        except OSError:
            return ""
        return f": {lines[-1][:200]}" if lines else ""

    # ----------------------------------------------------------------- monitor API
    def batch_jobs(self) -> list[BatchJob]:
        self._live_jobs()
        rows = slurmcli.squeue(list(self._job_names))
        current = {str(w.get("name")) for w in self.cluster.scheduler_info.get("workers", {}).values()}
        jobs = []
        for job_id, name in self._job_names.items():
            row = rows.get(job_id)
            if row is None:
                continue  # purged by SLURM long ago: nothing left to show
            worker = name if any(n == name or n.startswith(name + "-") for n in current) else ""
            jobs.append(BatchJob(job_id=job_id, state=row.state, reason=row.reason, worker=worker,
                                 runtime=row.elapsed))
        return jobs

    def supervise(self) -> list[str]:
        notices: list[str] = []
        live = self._live_jobs()
        # Also the jobs distributed already dropped after losing their worker: still to report.
        watched = {job_id: name for job_id, name in self._job_names.items() if job_id not in self._handled}
        rows = slurmcli.squeue(list(watched)) if watched else {}
        for job_id, name in watched.items():
            row = rows.get(job_id)
            ever = self.connected.since(name, row.started if row else None)
            if row is None or row.state in slurmcli.ENDED:
                self._handled.add(job_id)
                state = row.state if row else "gone from squeue"
                reason = f", {row.reason}" if row and row.reason else ""
                if ever:  # Dask saw the worker leave: it reruns the tasks and drops the job itself
                    notices.append(f"slurm job {job_id} ({name}) ended ({state}{reason}) while its worker "
                                   f"was connected; Dask reruns its tasks on the other workers")
                elif live.get(name) == job_id:
                    outcome = self._replace_failed(name)
                    notices.append(f"slurm job {job_id} ({name}) ended ({state}{reason}) before its Dask "
                                   f"worker connected{self._last_log_line(job_id)}; {outcome}; "
                                   f"see {self._log_path(job_id)}")
            elif row.state == "RUNNING" and not ever and row.seconds > self.settings.connect_timeout:
                self._handled.add(job_id)
                slurmcli.scancel(job_id)
                outcome = self._replace_failed(name)
                notices.append(self._never_connected_message(job_id, name, row.seconds)
                               + f"; cancelled, {outcome}")
        notices.extend(self._refill_lost())
        return notices

    def _refill_lost(self) -> list[str]:
        """Distributed forgets the job of a lost worker but keeps its slot in ``worker_spec``;
        only adaptive scaling would fill it again. Fill it for fixed-size clusters too."""
        cluster = self.cluster
        lost = [n for n in set(cluster.worker_spec) - set(cluster.workers) if n in self._job_names.values()]
        if not lost or self._gave_up:
            return []
        cluster.loop.add_callback(cluster.scale, jobs=len(cluster.worker_spec))
        return [f"slurm: submitting {len(lost)} job(s) to replace lost worker(s) {', '.join(sorted(lost))}"]

    def scale(self, n: int) -> None:
        self._gave_up = False
        self.cluster.scale(n)

    def adapt_jobs(self, minimum_jobs: int, maximum_jobs: int) -> None:
        self._gave_up = False
        self.cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)

    def adapt(self, minimum: int, maximum: int) -> None:
        self._gave_up = False
        self.cluster.adapt(minimum=minimum, maximum=maximum)
