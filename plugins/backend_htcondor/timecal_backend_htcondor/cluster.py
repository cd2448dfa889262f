"""An ``HTCondorCluster`` watched through the schedd.

dask-jobqueue only learns about a job through its Dask worker: a held job (over its memory
request, a missing input, a policy) or one that leaves the queue before its worker connects
keeps its slot forever (dask-jobqueue issues #643 and #620). ``supervise`` compares the
schedd's ClassAds with which workers ever connected, reports problems in one line with the
HoldReason, and replaces such jobs up to ``max_replacements``; past the limit held jobs stay
held for the user to ``release`` (after fixing the cause) or ``remove`` from the monitor.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from distributed.diagnostics.plugin import SchedulerPlugin

from timecal_core.backends import BatchJob, RunningCluster
from timecal_core.errors import UserError

from .schedd import ENDED, ScheddClient, format_seconds
from .settings import HTCondorSettings


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
        after = (started or 0) - 2
        with self._lock:
            return any(t >= after for n, t in self._connected.items()
                       if n == job_name or n.startswith(job_name + "-"))


class HTCondorRunningCluster(RunningCluster):
    def __init__(self, cluster, settings: HTCondorSettings, schedd: ScheddClient | None = None):
        super().__init__(cluster, "htcondor")
        self.settings = settings
        self.schedd = schedd or ScheddClient()
        self.connected = ConnectedWorkers()
        cluster.scheduler.add_plugin(self.connected)
        self._job_names: dict[str, str] = {}  # every job id submitted -> its worker name
        self._handled: set[str] = set()
        self.replacements = 0
        self._gave_up = False
        self.commands = {
            "release": (self.release, "release held HTCondor jobs: release JOBID... | all"),
            "remove": (self.remove, "remove HTCondor jobs (Dask reruns their tasks): remove JOBID... | all"),
        }

    # ----------------------------------------------------------------- bookkeeping
    @property
    def advertised_address(self) -> str:
        scheduler = self.cluster.scheduler
        return getattr(scheduler, "contact_address", None) or scheduler.address

    def _advertised(self) -> str:
        """Where the advertised address comes from, for the user to change it."""
        if self.settings.cluster_kwargs["scheduler_options"].get("contact_address"):
            source = "[htcondor] contact_address"
        elif self.settings.scheduler_interface:
            source = f"interface {self.settings.scheduler_interface}"
        else:
            source = "this host's default interface"
        return f"{self.advertised_address} (advertised from {source})"

    def _live_jobs(self) -> dict[str, str]:
        live = {}
        for name, job in list(self.cluster.workers.items()):
            job_id = getattr(job, "job_id", None)
            if job_id:
                live[str(name)] = job_id
                self._job_names[job_id] = str(name)
        return live

    def _log_path(self, job_id: str) -> Path:
        return self.settings.log_directory / f"worker-{job_id}.err"

    def _last_log_line(self, job_id: str) -> str:
        """The last line the job streamed to its stderr (often the failing prologue command)."""
        try:
            lines = [ln.strip() for ln in self._log_path(job_id).read_text().splitlines() if ln.strip()]
        except OSError:
            return ""
        return f": {lines[-1][:200]}" if lines else ""

    def _forget(self, name: str, replace: bool) -> None:
        """Drop a dead job from the cluster's books (on its event loop); maybe submit another."""
        cluster = self.cluster

        def on_loop():
            target = len(cluster.worker_spec)
            cluster.workers.pop(name, None)
            cluster.worker_spec.pop(name, None)
            if replace:
                cluster.scale(jobs=target)

        cluster.loop.add_callback(on_loop)

    def _can_replace(self) -> bool:
        """Below the limit; once at it, stop adaptive scaling, which would resubmit anyway."""
        if self.replacements < self.settings.max_replacements:
            return True
        if not self._gave_up:
            self._gave_up = True
            adaptive = getattr(self.cluster, "_adaptive", None)
            if adaptive is not None:
                adaptive.stop()
        return False

    def _replace(self, name: str, job_id: str, remove_reason: str | None) -> str:
        """Remove the job from the schedd if it is still there, submit another in its place."""
        self.replacements += 1
        if remove_reason:
            self.schedd.act("Remove", [job_id], remove_reason)
        self._forget(name, replace=True)
        return f"replaced ({self.replacements}/{self.settings.max_replacements})"

    def _limit_text(self) -> str:
        return (f"{self.replacements} jobs already replaced ([htcondor] max_replacements = "
                f"{self.settings.max_replacements})")

    # ----------------------------------------------------------------- monitor API
    def batch_jobs(self) -> list[BatchJob]:
        self._live_jobs()
        rows = self.schedd.query(list(self._job_names), time.time())
        current = {str(w.get("name")) for w in self.cluster.scheduler_info.get("workers", {}).values()}
        jobs = []
        for job_id, name in self._job_names.items():
            row = rows.get(job_id)
            if row is None:
                continue  # left the queue
            worker = name if any(n == name or n.startswith(name + "-") for n in current) else ""
            jobs.append(BatchJob(job_id=job_id, state=row.state, reason=row.reason, worker=worker,
                                 runtime=format_seconds(row.seconds)))
        return jobs

    def supervise(self) -> list[str]:
        notices: list[str] = []
        live = self._live_jobs()
        # Also the jobs distributed already dropped after losing their worker: still to report.
        watched = {job_id: name for job_id, name in self._job_names.items() if job_id not in self._handled}
        rows = self.schedd.query(list(watched), time.time()) if watched else {}
        for job_id, name in watched.items():
            row = rows.get(job_id)
            connected = self.connected.since(name, row.started if row else None)
            if row is None or row.state in ENDED:
                self._handled.add(job_id)
                state = row.state if row else "left the queue"
                if connected:
                    notices.append(f"htcondor job {job_id} ({name}) ended ({state}) while its worker was "
                                   f"connected; Dask reruns its tasks on the other workers")
                elif live.get(name) == job_id:
                    if self._can_replace():
                        outcome = self._replace(name, job_id, None)
                    else:
                        self._forget(name, replace=False)
                        outcome = f"not replaced: {self._limit_text()}"
                    notices.append(f"htcondor job {job_id} ({name}) {state} before its Dask worker "
                                   f"connected{self._last_log_line(job_id)}; {outcome}; see {self._log_path(job_id)}")
            elif row.state == "held" and live.get(name) == job_id:
                self._handled.add(job_id)
                if self._can_replace():
                    outcome = "removed, " + self._replace(name, job_id, "timecal: held, replaced by a new job")
                else:  # the user may fix the cause and release it
                    outcome = f"left held ({self._limit_text()}): fix the cause, then 'release {job_id}', " \
                              f"or 'remove {job_id}'"
                notices.append(f"htcondor job {job_id} ({name}) is held: {row.reason}; {outcome}")
            elif (row.state == "running" and not connected and live.get(name) == job_id
                  and row.seconds > self.settings.connect_timeout):
                self._handled.add(job_id)
                if self._can_replace():
                    outcome = "removed, " + self._replace(name, job_id, "timecal: worker never reached the scheduler")
                else:
                    outcome = f"left running: {self._limit_text()}"
                notices.append(f"htcondor job {job_id} ({name}) has run {row.seconds} s but its Dask worker "
                               f"never reached the scheduler at {self._advertised()}; set [htcondor] "
                               f"scheduler_interface or contact_address to an address the execute nodes "
                               f"can reach; {outcome}; see {self._log_path(job_id)}")
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
        return [f"htcondor: submitting {len(lost)} job(s) to replace lost worker(s) {', '.join(sorted(lost))}"]

    # ----------------------------------------------------------------- monitor commands
    def _select(self, arg: str, verb: str) -> list[str]:
        self._live_jobs()
        words = arg.split()
        if not words:
            raise UserError(f"{verb}: give job ids (e.g. {verb} 1234.0) or 'all'")
        if words == ["all"]:
            return sorted(self._job_names)
        unknown = [w for w in words if w not in self._job_names]
        if unknown:
            raise UserError(f"{verb}: {', '.join(unknown)} not a job of this production; its jobs: "
                            + (", ".join(sorted(self._job_names)) or "none"))
        return words

    def release(self, arg: str) -> str:
        rows = self.schedd.query(self._select(arg, "release"), time.time())
        held = sorted(j for j, r in rows.items() if r.state == "held")
        if not held:
            return "release: none of those jobs is held"
        self.schedd.act("Release", held, "timecal: released from the monitor")
        self._handled.difference_update(held)  # watched again: they may be held again
        return f"released {len(held)} job(s): {', '.join(held)}"

    def remove(self, arg: str) -> str:
        job_ids = self._select(arg, "remove")
        self.schedd.act("Remove", job_ids, "timecal: removed from the monitor")
        return (f"removed {len(job_ids)} job(s): {', '.join(job_ids)}; Dask reruns their tasks, "
                f"lost workers are replaced")

    # ----------------------------------------------------------------- scaling
    def adapt_jobs(self, minimum_jobs: int, maximum_jobs: int) -> None:
        self._gave_up = False
        self.cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)

    def scale(self, n: int) -> None:
        self._gave_up = False
        self.cluster.scale(n)

    def adapt(self, minimum: int, maximum: int) -> None:
        self._gave_up = False
        self.cluster.adapt(minimum=minimum, maximum=maximum)
