"""Dask workers in batch-system jobs, supervised: what the SLURM and HTCondor backends share.

dask-jobqueue only learns about a job through its Dask worker: a job that dies before its
worker connects (bad prologue, wrong ``python``, node failure), or is held (HTCondor:
unwritable output, policy; SLURM: ``scontrol hold``), keeps its slot forever and the
production silently runs on fewer workers (dask-jobqueue issues #643 and #620).
:class:`BatchRunningCluster` compares the batch system's own view of every job with which
workers ever connected, says what went wrong in one line (with the job's last log line or
HoldReason), and replaces such jobs up to ``max_replacements``.

When a worker dies with its task, the engine records the cause ``node`` and asks
:meth:`BatchRunningCluster.fate_of_worker` what the batch system knows: the job ran out of
memory or out of time (``oom``, ``walltime``, :mod:`timecal_core.ledger.failure_causes`) is what a
physicist must act on, and only the batch system can tell it.

A backend only says how to ask its batch system (:meth:`BatchRunningCluster.query_jobs`,
``remove_jobs``, ``release_jobs``), where a job's log is, which of its states mean
queued, running, held or ended (:class:`JobStatus.phase`), and which of its words mean out
of memory or out of time (``cause_of``). Everything else, including the timerc keys both
batch systems understand (:mod:`~timecal_core.batch.settings`), lives in this subpackage once.

Only public distributed / dask-jobqueue API is used: jobs are dropped with
``SpecCluster.scale_down`` (what ``Adaptive`` itself calls), the ``Adaptive`` object
``adapt()`` returns is kept to stop it, and scheduler state is read on the event loop
(a scheduler plugin records connections as they happen).
"""

from __future__ import annotations

import concurrent.futures
import inspect
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distributed.diagnostics.plugin import SchedulerPlugin

from ..contract.errors import UserError
from ..contract.running_cluster import BatchJob, RunningCluster
from .job_records import earlier_jobs, job_record
from .settings import BatchSettings

# What supervision does with a job, whatever the batch system calls its state.
QUEUED = "queued"  # waiting for resources: normal, shown with the batch system's reason
RUNNING = "running"  # its worker should connect within connect_timeout
HELD = "held"  # will not run until released: replaced (the cause is reported)
ENDED = "ended"  # its processes are gone: its worker cannot connect any more
#: Seconds a lost worker's job is asked about together with others (the engine gives up
#: asking after 10 minutes).
ASK_HORIZON = 900.0


# --------------------------------------------------------------------------- the cluster
def require_commands(backend: str, system: str, commands: tuple[str, ...], where: str) -> None:
    """UserError unless every client command the backend (or dask-jobqueue) calls is on PATH;
    ``where`` says where to run BXRun instead."""
    for command in commands:
        if shutil.which(command) is None:
            raise UserError(f"--dask {backend}: '{command}' not found: the {backend} backend needs the "
                            f"{system} client commands ({', '.join(commands)}) on PATH{where}, or use "
                            f"--dask local")


def job_cluster_kwargs(settings: BatchSettings, raw: Mapping[str, str], production_dir: Path) -> dict:
    """Every argument the dask-jobqueue cluster class gets, built here and only here: the
    backend's, with TLS and the dashboard where timerc says (:mod:`timecal_core.run.cluster_security`)."""
    from ..run.cluster_security import jobqueue_kwargs

    return jobqueue_kwargs(settings.section, raw, settings.cluster_kwargs, production_dir)


def start_job_cluster(cluster_class, settings: BatchSettings, raw: Mapping[str, str],
                      production_dir: Path):
    """The one place a dask-jobqueue cluster is instantiated (SLURMCluster, HTCondorCluster).
    Its scheduler, here, keeps its scratch space in the production (``scratch_config``); its
    job scripts are written where nobody else can touch them (:mod:`.job_files`)."""
    import dask

    from ..contract.trust import owned_dir
    from ..run.cluster_security import scratch_config
    from .job_files import exclusive_job_files

    owned_dir(settings.log_directory)
    kwargs = job_cluster_kwargs(settings, raw, production_dir)
    kwargs["job_cls"] = exclusive_job_files(cluster_class.job_cls)
    try:
        with dask.config.set(scratch_config(production_dir)):
            return cluster_class(**kwargs)
    except (ValueError, TypeError) as exc:  # dask-jobqueue's own checks of the merged settings
        port = settings.cluster_kwargs["scheduler_options"].get("port")
        if port and "non-running Server" in str(exc):  # distributed's words when it cannot listen
            raise UserError(f"timerc [{settings.section}] contact_address: the scheduler cannot listen on port "
                            f"{port} of this host (in use by another program?); choose a free port") from None
        raise UserError(f"timerc [{settings.section}] / jobqueue.yaml: {exc}".replace("\n", " ")) from None


def start_supervised(running_class, cluster_class, settings: BatchSettings, raw: Mapping[str, str],
                     production_dir: Path, check: Callable[[object], None] | None = None,
                     notes: Callable[[str, int], Sequence[str]] | None = None, **running_kwargs):
    """Start the cluster, ``check`` its job script with the batch system (before anything
    is queued), remove the jobs earlier drivers left (``notes``: the request's), submit the
    jobs and wait for the first worker. The cluster is closed (its jobs removed) if any of
    that fails."""
    cluster = start_job_cluster(cluster_class, settings, raw, production_dir)
    try:
        if check is not None:
            check(cluster)
        running = running_class(cluster, settings, **running_kwargs)
        if notes is not None:
            running.remove_earlier_jobs(notes)
        if settings.adapt:
            running.adapt_jobs(*settings.adapt)
        else:
            running.scale_jobs(settings.jobs)
        running.await_first_worker()
    except BaseException:
        cluster.close()
        raise
    return running


def call_on_loop(cluster, function: Callable, *args, timeout: float = 60):
    """Run ``function(*args)`` (awaited if it returns an awaitable) on the cluster's event
    loop, where distributed changes its state, and return its result to this thread."""
    done: concurrent.futures.Future = concurrent.futures.Future()

    async def run():
        try:
            result = function(*args)
            if inspect.isawaitable(result):
                result = await result
            done.set_result(result)
        except BaseException as exc:  # handed to the waiting thread
            done.set_exception(exc)

    cluster.loop.add_callback(run)
    return done.result(timeout)


@dataclass(frozen=True)
class Connection:
    time: float
    address: str
    pid: int | None


class ConnectedWorkers(SchedulerPlugin):
    """When (and from where) each worker name last reached the scheduler, recorded on the
    scheduler's event loop as it happens: a worker which came and went between two monitor
    intervals still counts, and a replacement job reusing a name is judged by its own
    worker (connected after the job started), not by its predecessor's."""

    name = "timecal-connected-workers"

    def __init__(self):
        self._connected: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def add_worker(self, scheduler, worker: str) -> None:
        state = scheduler.workers[worker]
        with self._lock:
            self._connected[str(state.name)] = Connection(time.time(), worker, getattr(state, "pid", None))

    def any(self) -> bool:
        with self._lock:
            return bool(self._connected)

    def of_job(self, job_name: str, started: float | None) -> list[tuple[str, Connection]]:
        """Workers of this job that connected (after ``started``, when known). With
        ``processes > 1`` a job's workers are named ``job-0``, ``job-1``..."""
        after = (started or 0) - 2  # batch systems give start times to the second
        with self._lock:
            return [(n, c) for n, c in self._connected.items()
                    if (n == job_name or n.startswith(job_name + "-")) and c.time >= after]


@dataclass(frozen=True)
class JobStatus:
    """A backend's answer about one job."""

    job_id: str
    state: str  # the batch system's own word, shown to the user
    phase: str  # QUEUED, RUNNING, HELD or ENDED: what supervision does with it
    reason: str = ""  # pending reason, HoldReason, exit status
    seconds: int = 0  # time running so far (0 unless running)
    started: float | None = None  # epoch seconds it started running
    runtime: str = ""  # as shown by the monitor's jobs table
    location: str = ""  # where the job can be found again, e.g. the HTCondor schedd's name
    #: what else the batch system said, for the backend's ``cause_of`` (SLURM's time limit,
    #: HTCondor's HoldReasonCode...)
    facts: Mapping[str, object] = field(default_factory=dict)


class BatchRunningCluster(RunningCluster):
    """A dask-jobqueue cluster whose jobs are watched through the batch system.

    Subclasses set ``backend`` (also the timerc section) and implement ``query_jobs``,
    ``remove_jobs``, ``release_jobs`` and ``log_path``."""

    #: what the batch system calls the nodes that run jobs (for messages)
    nodes = "worker nodes"

    def __init__(self, cluster, settings: BatchSettings, backend: str,
                 notify: Callable[[str], None] | None = None):
        super().__init__(cluster, backend)
        self.settings = settings
        self.notify = notify or (lambda text: print(f"BXRun: {text}", flush=True))
        self.connected = ConnectedWorkers()
        call_on_loop(cluster, cluster.scheduler.add_plugin, self.connected)
        self.adaptive = None  # the Adaptive object adapt() returned, while adaptive
        self._job_names: dict[str, str] = {}  # every job id this cluster submitted -> its worker name
        self._keys: dict[str, object] = {}  # worker name -> the cluster's own key for it
        self._handled: set[str] = set()  # job ids whose end (or hold) was already dealt with
        self._announced: set[str] = set()  # job ids recorded in a notice (ledger) already
        self._connected_seen: set[tuple[str, str]] = set()  # (job id, worker address) announced
        self._job_of_address: dict[str, str] = {}  # worker address -> the job it ran in
        self._fates: dict[str, tuple[str, str] | None] = {}  # job id -> its settled fate
        self._holds: dict[str, JobStatus] = {}  # job id -> its status when seen held (then removed)
        self._asked: dict[str, float] = {}  # jobs of lost workers not settled yet -> first asked
        self._passes = 0  # supervision passes so far: answers about jobs are fresh for one pass
        self._answers: tuple[int, dict[str, JobStatus | None]] = (-1, {})
        self._lost: set[str] = set()  # names of workers whose job ended while they were connected
        self._unreported: list[str] = []  # notices of the start, for the first supervise()
        self.replacements = 0
        self.gave_up = ""  # why no more jobs are replaced, once the budget is spent
        self.last_cause = ""  # the last job failure, for the message that gives up
        self.unreachable = ""  # the last report of a worker that could not reach the scheduler
        self.commands = {
            "release": (self.release, f"release held {backend} jobs: release JOBID... | all"),
            "remove": (self.remove, f"remove {backend} jobs (Dask reruns their tasks): remove JOBID... | all"),
        }

    # ----------------------------------------------------------------- what a backend provides
    def query_jobs(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """The batch system's view of these jobs; a job it no longer knows is absent."""
        raise NotImplementedError

    def remove_jobs(self, job_ids: list[str], reason: str) -> None:
        raise NotImplementedError

    def release_jobs(self, job_ids: list[str]) -> None:
        raise NotImplementedError

    def log_path(self, job_id: str) -> Path:
        """The job's stderr, where a failing prologue or Python leaves its last words."""
        raise NotImplementedError

    def job_label(self, job_id: str) -> str:
        return f"{self.backend} job {job_id}"

    def query_ended_jobs(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """Like ``query_jobs``, also asking where the batch system keeps jobs that left its
        queue long ago (SLURM's accounting), which only the fate of a lost worker needs."""
        return self.query_jobs(job_ids)

    def cause_of(self, status: JobStatus) -> tuple[str, str] | None:
        """``(cause, detail)`` when the batch system's answer about a job says more than
        "lost": ``oom``, ``walltime``, or ``node`` for a failed node, with one line in the
        batch system's words. The line names no job id or duration: ``errors`` groups
        failures by identical words (the job ids are in the supervision's notes). None:
        nothing to add, or not yet (the job still ends)."""
        return None

    def settled(self, status: JobStatus) -> bool:
        """The job's state is final: its answer will not change (asking again is useless)."""
        return status.phase == ENDED

    # ----------------------------------------------------------------- bookkeeping
    @property
    def advertised_address(self) -> str:
        options = self.settings.cluster_kwargs["scheduler_options"]
        return options.get("contact_address") or self.cluster.scheduler_address

    def _advertised(self) -> str:
        """The address workers are told, and where it comes from, for the user to change it."""
        if self.settings.cluster_kwargs["scheduler_options"].get("contact_address"):
            source = f"[{self.settings.section}] contact_address"
        elif self.settings.scheduler_interface:
            source = f"interface {self.settings.scheduler_interface}"
        else:
            source = "this host's default interface"
        return f"{self.advertised_address} (advertised from {source})"

    def live_jobs(self) -> dict[str, str]:
        """worker name -> job id of the jobs dask-jobqueue currently holds (submitted ones)."""
        live = {}
        for key, job in list(self.cluster.workers.items()):
            job_id = getattr(job, "job_id", None)
            if job_id:
                live[str(key)] = job_id
                self._keys[str(key)] = key
                self._job_names[job_id] = str(key)
        return live

    def _last_log_line(self, job_id: str) -> str:
        """The last line the job wrote to its stderr (often the failing command)."""
        try:
            lines = [ln.strip() for ln in self.log_path(job_id).read_text().splitlines() if ln.strip()]
        except OSError:
            return ""
        return f": {lines[-1][:200]}" if lines else ""

    def _drop(self, name: str, replace: bool) -> None:
        """Drop a dead or held job from the cluster (``scale_down`` also removes it from the
        batch system); with ``replace`` submit a new job in its place."""
        cluster, key = self.cluster, self._keys.get(name, name)

        async def on_loop():
            target = len(cluster.worker_spec)
            await cluster.scale_down([key])
            if replace:
                cluster.scale(jobs=target)

        call_on_loop(cluster, on_loop)

    def _replace_or_give_up(self, name: str) -> str:
        """Replace a job that cannot bring its worker; past the limit stop scaling up."""
        if self.replacements >= self.settings.max_replacements:
            self._give_up()
            self._drop(name, replace=False)
            return f"not replaced: {self._limit_text()}; fix the cause"
        self.replacements += 1
        self._drop(name, replace=True)
        return f"replaced ({self.replacements}/{self.settings.max_replacements})"

    def _limit_text(self) -> str:
        return (f"{self.replacements} jobs already replaced ([{self.settings.section}] max_replacements = "
                f"{self.settings.max_replacements})")

    def _give_up(self) -> None:
        if not self.gave_up:
            self.gave_up = self._limit_text()
            if self.adaptive is not None:  # it would resubmit what we just dropped
                self.adaptive.stop()
                self.adaptive = None

    def _never_connected(self, job_id: str, name: str, seconds: int) -> str:
        return (f"{self.job_label(job_id)} ({name}) has run {seconds} s but its Dask worker never reached "
                f"the scheduler at {self._advertised()}; set [{self.settings.section}] scheduler_interface "
                f"(or contact_address) to an address the {self.nodes} can reach; worker log: "
                f"{self.log_path(job_id)}")

    def remove_earlier_jobs(self, notes: Callable[[str, int], Sequence[str]]) -> None:
        """Remove the jobs an earlier driver of this production left queued, running or held
        (it was killed, or its host rebooted): their workers were given the address and
        credentials of a scheduler that died with that driver and can never serve this one;
        left alone they would hold slots (a queued one would even start later and wait
        ``death_timeout`` for nobody). Said in one line each, at the first interval."""
        earlier = earlier_jobs(notes, self.backend)
        rows = self.query_jobs(sorted(earlier)) if earlier else {}
        alive = sorted(j for j, row in rows.items() if row.phase != ENDED)
        if not alive:
            return
        self.remove_jobs(alive, "timecal: a job of an earlier driver of this production")
        for job_id in alive:
            where, worker = earlier[job_id]
            self._unreported.append(
                f"{self.job_label(job_id)} ({worker}), submitted by an earlier driver of this production, was "
                f"still {rows[job_id].state}: removed (its worker served that driver's scheduler, gone with it)")

    # ----------------------------------------------------------------- supervision
    def _examine(self) -> tuple[list[str], list[str]]:
        """One look at every job: (records for the ledger, problems and what was done)."""
        records: list[str] = []
        problems: list[str] = []
        live = self.live_jobs()
        # Also the jobs distributed already dropped after losing their worker: still to report.
        watched = {j: n for j, n in self._job_names.items() if j not in self._handled}
        rows = self.query_jobs(list(watched)) if watched else {}
        for job_id, name in watched.items():
            row = rows.get(job_id)
            label = f"{self.job_label(job_id)} ({name})"
            if row is not None and job_id not in self._announced:
                self._announced.add(job_id)
                records.append(job_record(self.job_label(job_id), row.location, name))
            connections = self.connected.of_job(name, row.started if row else None)
            for worker, conn in connections:
                self._job_of_address[conn.address] = job_id
                if (job_id, conn.address) not in self._connected_seen:
                    self._connected_seen.add((job_id, conn.address))
                    pid = f", pid {conn.pid}" if conn.pid else ""
                    records.append(f"{label}: worker {worker} connected from {conn.address}{pid}")
            if row is not None and row.phase == HELD:
                self._holds[job_id] = row  # why it was held, for fate_of_worker once it is removed
            if row is not None and row.phase == ENDED and not self.settled(row):
                continue  # e.g. SLURM's COMPLETING: say the final state (CANCELLED, TIMEOUT...)
            state = row.state if row else "gone from the queue"
            reason = f", {row.reason}" if row and row.reason else ""
            if row is None or row.phase == ENDED:
                self._handled.add(job_id)
                if connections:  # Dask saw the worker leave: it reruns the tasks itself
                    self._lost.add(name)
                    problems.append(f"{label} ended ({state}{reason}) while its worker was connected; "
                                    f"Dask reruns its tasks on the other workers")
                elif live.get(name) == job_id:
                    self.last_cause = (f"{label} ended ({state}{reason}) before its Dask worker connected"
                                       f"{self._last_log_line(job_id)}")
                    outcome = self._replace_or_give_up(name)
                    problems.append(f"{self.last_cause}; {outcome}; see {self.log_path(job_id)}")
            elif row.phase == HELD and live.get(name) == job_id:
                self._handled.add(job_id)
                if self.replacements < self.settings.max_replacements:
                    self.replacements += 1
                    self._drop(name, replace=True)  # scale_down removes the held job
                    outcome = f"removed, replaced ({self.replacements}/{self.settings.max_replacements})"
                else:  # the user may fix the cause and release it, or remove it
                    self._give_up()
                    outcome = (f"left held ({self._limit_text()}): fix the cause, then 'release {job_id}', "
                               f"or 'remove {job_id}'")
                self.last_cause = f"{label} is held: {row.reason or row.state}"
                problems.append(f"{self.last_cause}; {outcome}")
            elif (row.phase == RUNNING and not connections and live.get(name) == job_id
                  and row.seconds > self.settings.connect_timeout):
                self._handled.add(job_id)
                self.unreachable = self._never_connected(job_id, name, row.seconds)
                outcome = self._replace_or_give_up(name)  # scale_down removes the job
                problems.append(self.unreachable + f"; removed, {outcome}")
        problems.extend(self._refill_lost())
        return records, problems

    def _refill_lost(self) -> list[str]:
        """Distributed drops the job of a lost worker but keeps its slot in ``worker_spec``;
        only adaptive scaling would fill it again. Fill it for fixed-size clusters too."""
        cluster = self.cluster
        lost = [n for n in set(cluster.worker_spec) - set(cluster.workers) if str(n) in self._lost]
        if not lost or self.gave_up or self.adaptive is not None:
            return []
        self._lost.difference_update(map(str, lost))
        call_on_loop(cluster, lambda: cluster.scale(jobs=len(cluster.worker_spec)))
        return [f"{self.backend}: submitting {len(lost)} job(s) to replace lost worker(s) "
                f"{', '.join(sorted(map(str, lost)))}"]

    def job_of_worker(self, address: str) -> str | None:
        """The batch job a worker (scheduler address) ran in, as supervision matched them."""
        return self._job_of_address.get(address)

    def fate_of_worker(self, address: str) -> tuple[str, str] | None:
        """What became of the job of the worker at ``address`` (a scheduler address), as
        ``(cause, detail)``, e.g. ``("walltime", "the SLURM job reached its time limit of 1:00:00
        (TIMEOUT): raise [slurm] walltime")``; None while there is nothing (yet) to say. The engine asks at
        every monitor interval after the worker died with a task, because the batch system
        often learns the reason after Dask lost the worker. Jobs that ended are asked too
        (SLURM's accounting, HTCondor's history). Each supervision pass (:meth:`supervise`,
        which runs first in a monitor interval) records which job every worker ran in."""
        job_id = self._job_of_address.get(address)
        if job_id is None:
            return None  # not matched with its job yet: the next supervision pass does it
        if job_id in self._fates:
            return self._fates[job_id]
        status = self._status_this_pass(job_id)
        held = self._holds.get(job_id)
        fate = self.cause_of(status) if status is not None else None
        if fate is None and held is not None:  # removed by supervision since: the hold says why
            fate = self.cause_of(held)
        if fate is not None or status is None or self.settled(status):
            self._fates[job_id] = fate  # what it is, or nothing will ever be said (forgotten)
            self._asked.pop(job_id, None)
        return fate

    def _status_this_pass(self, job_id: str) -> JobStatus | None:
        """The job's status, asked once per supervision pass together with every other job
        still asked about: a node that took 100 workers with it costs one query, not 100."""
        done, answers = self._answers
        if done != self._passes:
            answers = {}
            self._answers = (self._passes, answers)
        if job_id not in answers:
            now = time.time()
            self._asked.setdefault(job_id, now)
            for stale in [j for j, t in self._asked.items() if now - t > ASK_HORIZON]:
                del self._asked[stale]  # the engine asked no more than ASK_HORIZON ago
            wanted = sorted(set(self._asked) - set(answers) | {job_id})
            found = self.query_ended_jobs(wanted)
            answers.update({j: found.get(j) for j in wanted})
        return answers[job_id]

    def supervise(self) -> list[str]:
        """Called once per monitor interval; every notice also goes into the ledger, so each
        job id (and, for HTCondor, its schedd) is on record for whoever must find it later."""
        records, problems = self._examine()
        self._passes += 1
        notices, self._unreported = self._unreported + records + problems, []
        return notices

    def await_first_worker(self, queue_grace: float = 10.0, poll: float = 1.0) -> None:
        """Return once a worker connects, or once every job has waited ``queue_grace`` seconds
        in the queue (a busy queue is normal: the monitor shows the batch system's reason).
        Jobs that end or are held before their worker connects are reported and replaced
        as during the production; once ``max_replacements`` is spent, or when a job runs
        ``connect_timeout`` without its worker connecting (the advertised address is wrong
        for every job alike), raise a UserError saying why. A broken set-up thus fails
        within minutes with its reason, instead of leaving a production waiting forever."""
        timeout = self.settings.connect_timeout
        started = time.monotonic()
        while not self.connected.any():
            waited = time.monotonic() - started
            live = self.live_jobs()
            if not live and not self.gave_up:
                if waited > timeout:
                    raise UserError(f"no {self.backend} job was submitted within {timeout:.0f} s (the "
                                    f"submit command failing in the background?); see the log of this production")
                time.sleep(poll)
                continue
            records, problems = self._examine()
            self._unreported.extend(records)
            for problem in problems:
                self.notify(problem)
            if self.unreachable:
                raise UserError(self.unreachable)
            live = self.live_jobs()
            rows = self.query_jobs(list(live.values())) if live else {}
            viable = [r for r in rows.values() if r.phase in (QUEUED, RUNNING)]
            if self.gave_up and not viable and not self.connected.any():
                raise UserError(f"{self.backend}: no Dask worker connected and {self.gave_up}: giving up"
                                + (f"; last: {self.last_cause}" if self.last_cause else ""))
            # Queued jobs are normal, unless earlier ones already failed: then wait for a
            # sign that the replacements work (within connect_timeout) before going on.
            grace = queue_grace if not self.replacements else timeout
            if waited > grace and rows and all(r.phase == QUEUED for r in rows.values()):
                return
            time.sleep(poll)

    # ----------------------------------------------------------------- monitor API
    def batch_jobs(self) -> list[BatchJob]:
        self.live_jobs()
        rows = self.query_jobs(list(self._job_names))
        current = {str(w.get("name")) for w in self.cluster.scheduler_info.get("workers", {}).values()}
        jobs = []
        for job_id, name in self._job_names.items():
            row = rows.get(job_id)
            if row is None:
                continue  # forgotten by the batch system: nothing left to show
            worker = name if any(n == name or n.startswith(name + "-") for n in current) else ""
            jobs.append(BatchJob(job_id=job_id, state=row.state, reason=row.reason, worker=worker,
                                 runtime=row.runtime))
        return jobs

    def _select(self, arg: str, verb: str) -> list[str]:
        self.live_jobs()
        words = arg.split()
        if not words:
            raise UserError(f"{verb}: give job ids (e.g. {verb} {next(iter(self._job_names), '1234')}) or 'all'")
        if words == ["all"]:
            return sorted(self._job_names)
        unknown = [w for w in words if w not in self._job_names]
        if unknown:
            raise UserError(f"{verb}: {', '.join(unknown)} not a job of this production; its jobs: "
                            + (", ".join(sorted(self._job_names)) or "none"))
        return words

    def release(self, arg: str) -> str:
        rows = self.query_jobs(self._select(arg, "release"))
        held = sorted(j for j, r in rows.items() if r.phase == HELD)
        if not held:
            return "release: none of those jobs is held"
        self.release_jobs(held)
        self.gave_up = ""  # the user fixed the cause: lost workers are replaced again
        self._handled.difference_update(held)  # watched again: they may be held again
        for job_id in held:
            self._holds.pop(job_id, None)
        return f"released {len(held)} job(s): {', '.join(held)}"

    def remove(self, arg: str) -> str:
        job_ids = self._select(arg, "remove")
        rows = self.query_jobs(job_ids)
        present = sorted(j for j, r in rows.items() if r.phase != ENDED)
        if not present:
            return "remove: none of those jobs is still queued, running or held"
        self.remove_jobs(present, "timecal: removed from the monitor")
        return (f"removed {len(present)} job(s): {', '.join(present)}; Dask reruns their tasks, "
                f"lost workers are replaced")

    # ----------------------------------------------------------------- scaling
    def _stop_adapting(self) -> None:
        if self.adaptive is not None:
            self.adaptive.stop()
            self.adaptive = None

    def scale_jobs(self, jobs: int) -> None:
        self._stop_adapting()
        self.gave_up = ""
        self.cluster.scale(jobs=jobs)

    def scale(self, n: int) -> None:
        """``n`` workers (the monitor's ``scale``): stops adaptive scaling."""
        self._stop_adapting()
        self.gave_up = ""
        self.cluster.scale(n)

    def adapt_jobs(self, minimum_jobs: int, maximum_jobs: int) -> None:
        self.gave_up = ""
        self.adaptive = self.cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)

    def adapt(self, minimum: int, maximum: int) -> None:
        self.gave_up = ""
        self.adaptive = self.cluster.adapt(minimum=minimum, maximum=maximum)
