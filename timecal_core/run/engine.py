"""The engine of a production run: hands a plan's tasks to a Dask cluster, records what
finishes in the ledger, retries failures. It knows nothing of screens or terminals: the
production loop (:mod:`timecal_core.driver.production`) drives it and the monitor reaches it only
through :mod:`timecal_core.control.requests`.

Design choices that keep the driver light and trustworthy:

- Disk is the truth for completion; on start the ledger is reconciled with disk, so a
  driver killed with SIGKILL is resumed by rerunning the same command (finished tasks are
  skipped, interrupted ones resubmitted; ``execute_task`` makes results atomic).
- At most ``max_in_flight`` tasks are known to Dask at a time; the rest wait in a queue
  and are submitted in large batches as earlier ones finish, so scheduler and client memory
  do not grow with the size of the grid.
- A completion thread looks at the futures in flight a few times a second, records what
  finished in one ledger transaction and drops those futures at once (nothing finished is
  kept).
- The scheduler is told not to retry tasks whose worker died (``allowed-failures = 0``):
  the engine does it, so a dead worker costs the task one attempt, recorded in the ledger;
  a worker the engine retires itself (``scale`` down) costs nothing.
- The SQL lives in :mod:`timecal_core.ledger.sqlite_ledger`; the engine only calls its methods.
"""

from __future__ import annotations

import gc
import glob
import itertools
import logging
import resource
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ledger import failure_causes as causes
from ..ledger.records import (CANCELLED, Completion, DONE, ERROR, FAILED, Failure, LedgerUnavailable,
                              PENDING, PLANNED, RUNNING)
from ..ledger.sqlite_ledger import Ledger
from ..views.status_text import (ClusterInfo, StatusSnapshot, count_batch_states, render_line,
                                 render_status)
from .failures import ForGoodReports, describe_failure, disk_full  # noqa: F401 (describe_failure: re-exported)

KEY_PREFIX = "bxtask"
MIN_TICK_GAP = 1.0  # seconds between two monitor ticks, however eager
COLLECT_DELAY = 0.25  # seconds between two looks at the futures in flight
LOOK_WINDOW, FULL_LOOK = 256, 10  # see Engine._finished
RATE_WINDOW = 600.0  # seconds of completions the rate and ETA are computed from

log = logging.getLogger("timecal.driver")


@dataclass
class ProductionOptions:
    interval: float = 60.0
    max_retries: int = 3  # attempts per task before it is failed for good
    #: attempts per failure cause (timerc [retry]); None: max_retries for every cause
    retry_policy: causes.RetryPolicy | None = None
    verbose: bool = False
    max_in_flight: int = 5000  # tasks handed to Dask at once; the rest wait in the driver
    layout: str | None = None  # output layout of the tasks (the script's layouts; None: n/a)


def _processing_on_scheduler(dask_scheduler=None) -> dict[str, list[str]]:
    """Runs on the scheduler: the keys assigned to each worker (executing or about to): at
    once, where ``executing`` waits for the worker's next heartbeat."""
    return {ws.address: [ts.key for ts in ws.processing] for ws in dask_scheduler.workers.values()}


def _executing_on_scheduler(dask_scheduler=None) -> dict[str, list[str]]:
    """Runs on the scheduler: the keys each worker reports executing (heartbeats)."""
    return {ws.address: [ts.key for ts in ws.executing] for ws in dask_scheduler.workers.values()}


def _count_every_failure(dask_scheduler=None) -> int:
    """Runs on the scheduler: a worker lost with a task fails that task at once, so that
    every attempt and its cause are counted here (the policy of ``[retry]``), not retried
    silently by Dask. The driver's configuration says so to schedulers it runs itself; this
    says it to one running elsewhere (a gateway's). Returns the previous allowance."""
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = 0
    return previous


class Engine:
    """Submission, completion tracking and bookkeeping of one run of a production.

    Thread model: the completion thread records outcomes and refills the window; the
    monitor (main thread or the shell's ticker) calls :meth:`tick`; shell commands call
    the others. ``_lock`` guards the in-memory maps; the ledger has its own lock.
    """

    def __init__(self, plan, ledger: Ledger, client, running, options: ProductionOptions,
                 timerc, notify: Callable[[str], None] = print, driver_log: Path | None = None,
                 on_exhausted: Callable[[str | None, int], None] | None = None):
        self.plan = plan
        self.ledger = ledger
        self.client = client
        self.running = running
        self.options = options
        self.timerc = timerc
        self.notify = notify
        self.specs = {t.task_id: t for t in plan.tasks}
        cmssw = timerc.optional_path("cmssw") if timerc is not None else None
        self._task_kwargs = {"production_dir": str(plan.production_dir),
                             "cmssw_init": timerc.cmssw_init if timerc is not None else "",
                             "cmssw_dir": str(cmssw) if cmssw else None, "layout": options.layout}
        self._futures: dict[str, Any] = {}  # task id -> future of its current attempt
        self._recording = 0  # batches taken from Dask, not yet in the ledger
        self._queue: deque[str] = deque()  # task ids waiting to be handed to Dask
        self._withdrawn: set[str] = set()  # ids still in _queue but cancelled: skipped
        self._lock = threading.RLock()
        self._serial = itertools.count()
        self._completions: deque[float] = deque()  # completion times within RATE_WINDOW
        self._idle = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.time()
        self.completed_this_run = 0
        self.verbose = options.verbose
        self.driver_log = driver_log
        # tasks failed for good: (what to say, or None when counted only; how many tasks)
        self.on_exhausted = on_exhausted or (lambda text, _tasks: text and notify(text))
        self._retiring: set[str] = set()  # workers scale() removes: their tasks cost nothing
        self.policy = options.retry_policy or causes.RetryPolicy(default=options.max_retries)
        #: (task id, attempt, worker, when) of attempts lost with their worker: the batch
        #: system may tell later that the job ran out of memory or time
        self._lost: list[tuple[str, int, str, float]] = []
        self.last_snapshot: StatusSnapshot | None = None
        #: a damaged ledger or a full disk found while the production runs (the error to end
        #: with, one line): the loop stops
        self.broken: Exception | None = None
        self.for_good = ForGoodReports(lambda text, tasks: self.on_exhausted(text, tasks))

    # ------------------------------------------------------------------ submission
    def start(self) -> None:
        self.client.run_on_scheduler(_count_every_failure)
        pending = set(self.ledger.ids_in_state(PENDING))
        self._queue.extend(t.task_id for t in self.plan.tasks if t.task_id in pending)
        self._refill()
        self._thread = threading.Thread(target=self._collect, name="timecal-completions",
                                        daemon=True)
        self._thread.start()
        self._update_idle()

    def _submit(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        from .tasks import execute_task

        # Under the lock: a task must never be seen neither queued nor in flight, or the
        # safety net of tick() would submit it twice.
        with self._lock:
            keys = [f"{KEY_PREFIX}-{tid}-{next(self._serial)}" for tid in task_ids]
            futures = self.client.map(execute_task, [self.specs[t] for t in task_ids], key=keys,
                                      pure=False, **self._task_kwargs)
            self._futures.update(zip(task_ids, futures))
            self._idle.clear()

    def _refill(self) -> None:
        """Hand queued tasks to Dask once the window is half empty (large batches keep the
        per-task cost of submission low)."""
        with self._lock:
            room = self.options.max_in_flight - len(self._futures)
            if not self._queue or room < min(self.options.max_in_flight // 2, len(self._queue)):
                return
            batch = []
            while self._queue and len(batch) < room:
                tid = self._queue.popleft()
                if tid in self._withdrawn:
                    self._withdrawn.discard(tid)
                    continue
                batch.append(tid)
            self._submit(batch)

    # ------------------------------------------------------------------ completion
    def _collect(self) -> None:
        """Every COLLECT_DELAY, record what finished meanwhile. Polling the futures in
        flight (bounded by max_in_flight, a cheap status check each) costs less than
        tracking every future with a callback, and one gather and one ledger transaction
        then serve every task that finished in the meantime."""
        looks = 0
        while not self._stopping.wait(COLLECT_DELAY):
            looks += 1
            try:
                with self._lock:
                    finished = self._finished(whole=looks % FULL_LOOK == 0)
                if finished:
                    self._record(finished)
                    self._refill()
            except LedgerUnavailable as exc:  # damaged under the driver: nothing more can be recorded
                log.error("%s", exc)
                self.broken = exc
                return
            except Exception as exc:  # keep collecting: one bad batch must not stall a production
                full = disk_full(exc, self.ledger.path)
                if full is not None:
                    self.broken = full  # the disk is full: the driver stops, in one line
                    return
                log.exception("recording completions failed")
                self.notify("internal error while recording completions; see "
                            f"{self.driver_log or 'the driver log'}")
            self._update_idle()

    def _finished(self, whole: bool) -> list:
        """The finished futures, oldest first. Dask runs them about in the order handed
        over: unless ``whole`` (every FULL_LOOK-th look, for failures and retries out of
        order), a look stops after LOOK_WINDOW unfinished ones in a row (four looks a second
        at 5,000 futures cost ~3 s of CPU per 5,000 tasks: 100 status checks a task)."""
        finished, waiting = [], 0
        for future in self._futures.values():  # insertion order: the order handed to Dask
            if future.done():
                finished.append(future)
                waiting = 0
            elif not whole:
                waiting += 1
                if waiting >= LOOK_WINDOW:
                    break
        return finished

    def _record(self, batch: list) -> None:
        current = []
        with self._lock:
            for future in batch:
                tid = future.key.split("-")[1] if isinstance(future.key, str) else None
                if tid is not None and self._futures.get(tid) is future:
                    del self._futures[tid]
                    current.append((tid, future))
            self._recording += 1  # not idle until these outcomes are in the ledger
        try:
            self._record_outcomes(current)
        finally:
            with self._lock:
                self._recording -= 1

    def _record_outcomes(self, current: list) -> None:
        finished = [(tid, f) for tid, f in current if f.status == "finished"]
        completions, failures, unstarted = [], [], []
        for (tid, _), result in zip(finished, self._gather([f for _, f in finished])):
            if isinstance(result, BaseException):  # finished, but its worker vanished since
                failures.append(Failure(tid, None, "result", None,
                                        f"result lost before it was collected: {result}", ""))
            else:
                completions.append(Completion(tid, result.worker, result.start, result.end,
                                              dict(getattr(result, "resources", None) or {})))
        for tid, future in current:
            if future.status == "error":
                failure = describe_failure(tid, future.exception())
                if failure.step == "worker" and (self._never_started(tid) or
                                                 failure.worker in self._retiring):
                    unstarted.append(tid)
                else:
                    failures.append(failure)
            elif future.status == "lost":
                failures.append(Failure(tid, None, "scheduler", None, "result lost by the scheduler",
                                        "", cause=causes.NODE))
            # "cancelled": whoever cancelled it already updated the ledger.
        if hasattr(self.running, "job_of_worker"):  # a lost worker's batch job, for its attempt
            for f in failures:
                if f.step == "worker" and f.worker and not f.resources.get("job_id"):
                    f.resources["job_id"] = self.running.job_of_worker(f.worker)
        exhausted = self.ledger.record_outcomes(completions, failures, self.policy)
        lost = [(f.task_id, f.worker) for f in failures if f.step == "worker" and f.worker]
        if lost and hasattr(self.running, "fate_of_worker"):
            now = time.time()
            with self._lock:
                for tid, worker in lost:
                    row = self.ledger.task(tid)
                    if row is not None:
                        self._lost.append((tid, row.attempts, worker, now))
        if unstarted:
            self.ledger.set_state(unstarted, PENDING, "its worker died before it started or was "
                                  "retired: resubmitted without counting an attempt")
            self._submit(unstarted)
        now = time.time()
        with self._lock:
            self._completions.extend([now] * len(completions))
            self.completed_this_run += len(completions)
        if self.verbose:
            for c in completions:
                self.notify(f"done {c.task_id} on {c.worker} in {c.end - c.start:.1f} s")
            for f in failures:
                self.notify(f"failed {f.task_id}: {f.reason}")
        self.for_good.announce(exhausted, {f.task_id: f for f in failures})

    def _gather(self, futures: list) -> list:
        """Results of finished futures in one round trip; one by one if that fails."""
        if not futures:
            return []
        try:
            return self.client.gather(futures)
        except Exception:
            out = []
            for future in futures:
                try:
                    out.append(future.result(timeout=60))
                except Exception as exc:
                    out.append(exc)
            return out

    def _never_started(self, task_id: str) -> bool:
        """A worker that dies also loses the task queued behind the one it executes; that
        task never created its work directory, and is not charged an attempt."""
        from ..plan.grid import RESULTS, TMP

        tmp = Path(self.plan.production_dir) / RESULTS / TMP
        return not any(tmp.glob(glob.escape(self.specs[task_id].dirname) + ".*"))

    def _update_idle(self) -> None:
        with self._lock:
            if not self._futures and not self._recording and \
                    len(self._queue) == len(self._withdrawn):
                self._idle.set()

    # ------------------------------------------------------------------ monitor
    def tick(self) -> list[str]:
        """One monitor interval: supervise the batch system, note which tasks execute,
        resubmit failed tasks. Returns notices for the user."""
        notices = []
        try:
            notices.extend(self.running.supervise())
        except Exception as exc:
            notices.append(f"backend supervision failed: {type(exc).__name__}: {exc}")
        for notice in notices:  # batch-system events belong in the production's history too
            self.ledger.note(f"{self.running.backend}: {notice}")
        self.refresh_running()
        self._refine_lost()
        notices.extend(self.for_good.counts())
        retried = self.retry(self.ledger.ids_in_state(FAILED), automatic=True)
        if retried:
            notices.append(f"resubmitted {len(retried)} failed task(s)")
        orphans = self._orphans()
        if orphans:
            self.ledger.set_state(orphans, PENDING, "not in flight: resubmitted")
            self._submit(orphans)
        self._refill()
        self._update_idle()
        return notices

    def _refine_lost(self, patience: float = 600.0) -> None:
        """Ask the batch system what became of the jobs of lost workers (out of memory, out
        of time), for up to ``patience`` seconds: accounting lags behind the loss."""
        with self._lock:
            lost, self._lost = self._lost, []
        keep = []
        now = time.time()
        for tid, attempt, worker, when in lost:
            try:
                fate = self.running.fate_of_worker(worker)
            except Exception:
                log.exception("asking the fate of worker %s failed", worker)
                fate = None
            if fate:
                cause, detail = fate
                if self.ledger.refine_cause(tid, attempt, cause, detail, self.policy):
                    self.ledger.note(f"{self.running.backend}: task {tid} attempt {attempt}: {detail}")
            elif now - when < patience:
                keep.append((tid, attempt, worker, when))
        with self._lock:
            self._lost.extend(keep)

    def _orphans(self) -> list[str]:
        """Tasks the ledger calls pending or running while the driver holds no future for
        them: a safety net so that a bookkeeping slip can never stall a production."""
        if not self.idle:
            return []
        with self._lock:
            in_flight = set(self._futures) | (set(self._queue) - self._withdrawn)
        return [t for t in self.ledger.ids_in_state(PENDING, RUNNING) if t not in in_flight]

    def refresh_running(self) -> None:
        try:
            executing = self.client.run_on_scheduler(_executing_on_scheduler)
        except Exception:  # scheduler busy or gone: the next tick will tell
            return
        now = time.time()
        seen = []
        with self._lock:
            for worker, keys in executing.items():
                for key in keys:
                    parts = str(key).split("-")
                    if len(parts) == 3 and parts[0] == KEY_PREFIX:
                        future = self._futures.get(parts[1])
                        if future is not None and future.key == key:
                            seen.append((parts[1], worker, now))
        if seen:
            self.ledger.mark_running(seen)

    def retry(self, task_ids: Iterable[str], automatic: bool = False) -> list[str]:
        """Resubmit tasks now. Automatic retries take failed tasks only; a user's retry may
        also revive tasks failed for good or cancelled (giving them one more attempt)."""
        allowed = (FAILED,) if automatic else (FAILED, ERROR, CANCELLED)
        with self._lock:
            ids = [t for t in task_ids if t not in self._futures]
        if not automatic:
            self.ledger.fresh_budget(ids)
        changed = self.ledger.set_state(ids, PENDING, "resubmitted" + ("" if automatic else " by the user"),
                                        only_from=allowed)
        with self._lock:
            # A cancelled task still waiting in the queue is simply un-cancelled there.
            requeued = self._withdrawn.intersection(changed)
            self._withdrawn.difference_update(requeued)
            self._submit([t for t in changed if t not in requeued])
        return changed

    def cancel(self, task_ids: Iterable[str]) -> list[str]:
        ids = list(task_ids)
        changed = self.ledger.set_state(ids, CANCELLED, "cancelled by the user",
                                        only_from=(PENDING, RUNNING, FAILED))
        with self._lock:
            futures = [self._futures.pop(t) for t in changed if t in self._futures]
            self._withdrawn.update(set(changed).intersection(self._queue))
        if futures:
            self.client.cancel(futures)
        self._update_idle()
        return changed

    def assigned(self) -> dict[str, list[str]]:
        """Worker address -> task ids it executes or is about to (empty when the scheduler
        cannot be asked)."""
        try:
            executing = self.client.run_on_scheduler(_processing_on_scheduler)
        except Exception:
            return {}
        return {w: [str(k).split("-")[1] for k in keys if str(k).startswith(KEY_PREFIX + "-")]
                for w, keys in executing.items()}

    def scale(self, n: int) -> str:
        """Ask for ``n`` workers. Going down, idle workers are retired first; a busy one that
        must go hands its task back without charging it an attempt (the worker's steps are
        killed with it)."""
        executing = self.assigned()
        retire = len(executing) - n
        if retire <= 0 or not hasattr(self.running, "retire"):
            self.running.scale(n)
            return f"asked for {n} workers"
        chosen = sorted(executing, key=lambda w: len(executing[w]))[:retire]
        handed_back = sum(len(executing[w]) for w in chosen)
        with self._lock:
            self._retiring.update(chosen)
        # Retiring waits for the workers to close (and their steps to be killed): the answer
        # must not wait for it.
        threading.Thread(target=self._retire, args=(chosen,), daemon=True,
                         name="timecal-retire").start()
        return (f"asked for {n} workers: retiring {len(chosen)}" +
                (f"; {handed_back} running task(s) handed back without costing an attempt"
                 if handed_back else " idle worker(s)"))

    def _retire(self, workers: list[str]) -> None:
        try:
            self.running.retire(workers)
        except Exception:
            log.exception("retiring %s failed", workers)
            self.notify(f"scale: retiring {len(workers)} worker(s) failed; see {self.driver_log}")

    def rate(self) -> float | None:
        now = time.time()
        with self._lock:
            while self._completions and self._completions[0] < now - RATE_WINDOW:
                self._completions.popleft()
            n = len(self._completions)
        span = min(RATE_WINDOW, now - self.started)
        return n / span if n and span > 0 else None

    def cluster_info(self) -> ClusterInfo | None:
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except TypeError:  # older distributed
            info = self.client.scheduler_info()
        except Exception:
            return None
        workers = info.get("workers", {}).values()
        return ClusterInfo(workers=len(workers), requested=self.running.requested(),
                           threads=sum(w.get("nthreads", 0) for w in workers),
                           memory=sum(w.get("memory_limit", 0) or 0 for w in workers),
                           dashboard=self.running.dashboard_link)

    def snapshot(self, with_cluster: bool = True) -> StatusSnapshot:
        counts = self.ledger.counts()
        rate = self.rate()
        remaining = counts[PENDING] + counts[RUNNING] + counts[FAILED]
        eta = remaining / rate if rate and remaining else (0.0 if not remaining else None)
        batch = {}
        if with_cluster:
            try:
                batch = count_batch_states(self.running.batch_jobs())
            except Exception:
                batch = {}
        return StatusSnapshot(counts=counts, rate=rate, eta=eta, elapsed=time.time() - self.started,
                              cluster=self.cluster_info() if with_cluster else None, batch_jobs=batch)

    def status_texts(self) -> tuple[str, str]:
        """The one-line and the full status from one snapshot (one look at the cluster),
        kept as ``last_snapshot`` for the status page."""
        snap = self.last_snapshot = self.snapshot()
        return render_line(snap), render_status(snap)

    @property
    def idle(self) -> bool:
        """Nothing in flight or queued (failed tasks may still wait for their retry)."""
        return self._idle.is_set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def finished(self) -> bool:
        """Nothing in flight, queued or waiting for a retry."""
        return self.idle and not self.ledger.ids_in_state(FAILED, PENDING, RUNNING)

    def all_done(self) -> bool:
        """Everything this run was to run is done (a pilot leaves the rest of the grid
        planned)."""
        counts = self.ledger.counts()
        return counts[DONE] + counts[PLANNED] == sum(counts.values())

    def futures_summary(self) -> dict[str, int]:
        with self._lock:
            futures = list(self._futures.values())
            queued = len(self._queue)
        summary: dict[str, int] = {}
        for f in futures:
            summary[f.status] = summary.get(f.status, 0) + 1
        summary["queued in the driver"] = queued
        return summary

    def clean(self) -> str:
        """Finished futures are dropped as they complete; this also drops any the completion
        thread has not reached yet and lets Python return the memory."""
        with self._lock:
            before = len(self._futures)
        collected = gc.collect()
        with self._lock:
            after = len(self._futures)
        return (f"holding {after} futures of tasks in flight (finished ones are released as they "
                f"complete; {before - after} released now); gc freed {collected} objects; "
                f"driver peak RSS {peak_rss_mib():.0f} MiB")

    def stop(self, reason: str) -> None:
        """Stop submitting, cancel what runs, and leave every unfinished task pending in the
        ledger so that the next run resumes it."""
        self._stopping.set()
        with self._lock:
            futures = list(self._futures.values())
            self._futures.clear()
            self._queue.clear()
        if futures:
            try:
                self.client.cancel(futures)
            except Exception:
                pass
        try:
            interrupted = self.ledger.ids_in_state(RUNNING)
            self.ledger.set_state(interrupted, PENDING, f"{reason}: resumes on the next run")
            self.ledger.note(f"driver stopped: {reason}")
        except (LedgerUnavailable, sqlite3.OperationalError):  # damaged or full: the next run
            pass  # reconciles with disk (or says why it cannot)
        self.close()

    def close(self) -> None:
        """End the completion thread (before the client goes away)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
