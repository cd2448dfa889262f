"""The production engine: submits a plan's tasks to a Dask cluster, follows them to
completion, retries failures and keeps the ledger, for productions of up to ~30,000 tasks
that run for days.

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
  the driver does it, so a dead worker costs the task one attempt, recorded in the ledger.
- The monitor (shell or one-line reports) ticks every interval: batch-system supervision,
  which tasks execute where, resubmission of failed tasks, status.
"""

from __future__ import annotations

import gc
import glob
import itertools
import logging
import os
import resource
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .ledger import (CANCELLED, DONE, ERROR, FAILED, PENDING, RUNNING, Completion, Failure,
                     Ledger, rebuild)
from .status import ClusterInfo, StatusSnapshot, count_batch_states, render_line, render_status

KEY_PREFIX = "bxtask"
MIN_TICK_GAP = 1.0  # seconds between two monitor ticks, however eager
COLLECT_DELAY = 0.25  # seconds between two looks at the futures in flight
RATE_WINDOW = 600.0  # seconds of completions the rate and ETA are computed from
LOG_DIR = "logs"
DRIVER_LOG = "driver.log"
WORKER_LOG_ENV = "DASK_LOGGING__DISTRIBUTED"  # read by worker processes when they start

log = logging.getLogger("timecal.driver")


@dataclass
class ProductionOptions:
    interactive: bool
    interval: float = 60.0
    max_retries: int = 3  # attempts per task before it is failed for good
    verbose: bool = False
    max_in_flight: int = 5000  # tasks handed to Dask at once; the rest wait in the driver


def _executing_on_scheduler(dask_scheduler=None) -> dict[str, list[str]]:
    """Runs on the scheduler: the keys each worker reports executing (heartbeats)."""
    return {ws.address: [ts.key for ts in ws.executing] for ws in dask_scheduler.workers.values()}


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def describe_failure(task_id: str, exc: BaseException) -> Failure:
    """Turn what a future raised into a ledger failure; ``reason`` is the one line that
    groups similar failures in ``errors``."""
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        worker = getattr(getattr(exc, "last_worker", None), "address", None)
        return Failure(task_id, worker, "worker", None,
                       "the worker running the task died (killed, out of memory or lost)", str(exc))
    if hasattr(exc, "step") and hasattr(exc, "log_tail"):
        tail = exc.log_tail or ""
        code = getattr(exc, "exit_code", None)
        reason = f"step {exc.step} " + (f"exited with code {code}" if code is not None else "failed")
        last = _last_line(tail)
        if last:
            reason += f": {last[:160]}"
        return Failure(task_id, None, exc.step, code, reason, tail)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Failure(task_id, None, None, None, f"{type(exc).__name__}: {exc}"[:200], text[-4000:])


class Engine:
    """Submission, completion tracking and bookkeeping of one run of a production.

    Thread model: the completion thread records outcomes and refills the window; the
    monitor (main thread or the shell's ticker) calls :meth:`tick`; shell commands call
    the others. ``_lock`` guards the in-memory maps; the ledger has its own lock.
    """

    def __init__(self, plan, ledger: Ledger, client, running, options: ProductionOptions,
                 timerc, notify: Callable[[str], None] = print):
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
                             "cmssw_dir": str(cmssw) if cmssw else None}
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

    # ------------------------------------------------------------------ submission
    def start(self) -> None:
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
        while not self._stopping.wait(COLLECT_DELAY):
            try:
                with self._lock:
                    finished = [f for f in self._futures.values() if f.done()]
                if finished:
                    self._record(finished)
                    self._refill()
            except Exception:  # keep collecting: one bad batch must not stall a production
                log.exception("recording completions failed")
                self.notify("internal error while recording completions; see "
                            f"{self.plan.production_dir / LOG_DIR / DRIVER_LOG}")
            self._update_idle()

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
                completions.append(Completion(tid, result.worker, result.start, result.end))
        for tid, future in current:
            if future.status == "error":
                failure = describe_failure(tid, future.exception())
                if failure.step == "worker" and self._never_started(tid):
                    unstarted.append(tid)
                else:
                    failures.append(failure)
            elif future.status == "lost":
                failures.append(Failure(tid, None, "scheduler", None, "result lost by the scheduler", ""))
            # "cancelled": whoever cancelled it already updated the ledger.
        exhausted = self.ledger.record_outcomes(completions, failures, self.options.max_retries)
        if unstarted:
            self.ledger.set_state(unstarted, PENDING, "its worker died before it started: "
                                  "resubmitted without counting an attempt")
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
        for tid in exhausted:
            self.notify(f"task {tid} failed for good after {self.options.max_retries} attempt(s)")

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
        from .grid import RESULTS, TMP

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
            # A user retry of an exhausted task gives it one more attempt.
            with self.ledger.transaction() as db:
                db.executemany("UPDATE tasks SET attempts=MIN(attempts, ?) WHERE task_id=? "
                               "AND state='error'", [(self.options.max_retries - 1, t) for t in ids])
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
        cluster = self.running.cluster
        requested = len(cluster.plan) if hasattr(cluster, "plan") else None
        return ClusterInfo(workers=len(workers), requested=requested,
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

    def status_text(self) -> str:
        return render_status(self.snapshot())

    def status_line(self) -> str:
        return render_line(self.snapshot())

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
        counts = self.ledger.counts()
        return counts[DONE] == sum(counts.values())

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
        interrupted = self.ledger.ids_in_state(RUNNING)
        self.ledger.set_state(interrupted, PENDING, f"{reason}: resumes on the next run")
        self.ledger.note(f"driver stopped: {reason}")
        self.close()

    def close(self) -> None:
        """End the completion thread (before the client goes away)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------- aggregation
def finished_for_aggregation(production_dir: Path, ledger: Ledger | None) -> list:
    """Finished tasks from disk, with runtime and attempts from the ledger where known."""
    from .tasks import finished_tasks

    known = ledger.runtimes() if ledger is not None else {}
    out = []
    for task in finished_tasks(production_dir):
        runtime, attempts = known.get(task.task_id, (None, None))
        out.append(replace(task, runtime=runtime if runtime is not None else task.runtime,
                           attempts=attempts if attempts else task.attempts))
    return out


def run_aggregators(production_dir: Path, script_name: str, ledger: Ledger | None, timerc,
                    verbose: bool = False, out=print) -> bool:
    """Run every registered aggregator; one failing does not stop the others."""
    from .hookspecs import AggregationRequest
    from .plugins import get_registry

    tasks = tuple(finished_for_aggregation(production_dir, ledger))
    request = AggregationRequest(Path(production_dir), script_name, tasks, timerc, verbose)
    ok = True
    for name, reg in sorted(get_registry().aggregators.items()):
        try:
            written = reg.item.run(request)
        except Exception as exc:
            ok = False
            out(f"aggregator {name} ({reg.distribution}) failed: {type(exc).__name__}: {exc}")
            if verbose:
                out(traceback.format_exc())
            continue
        files = ", ".join(str(p) for p in written) or "nothing"
        out(f"aggregator {name}: {len(tasks)} tasks -> {files}")
    return ok


# ---------------------------------------------------------------------- entry points
class _DaskLogToFile:
    """Dask's own log lines would clobber the shell and the status lines: while the driver
    runs they go to ``<output>/logs/driver.log`` instead."""

    def __init__(self, production_dir: Path):
        self.path = production_dir / LOG_DIR / DRIVER_LOG
        self._saved: list = []

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in ("distributed", "timecal"):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.handlers[:], logger.propagate))
            logger.handlers = [self.handler]
            logger.propagate = False
        return self

    def __exit__(self, *exc):
        for logger, handlers, propagate in self._saved:
            logger.handlers = handlers
            logger.propagate = propagate
        self.handler.close()


@contextmanager
def _quiet_workers():
    """Worker processes started by the backend (now or when a dead one is replaced) log
    every failed task to their stderr, which on a local cluster is the user's terminal;
    the ledger already records failures with their logs, so keep workers quiet."""
    saved = os.environ.get(WORKER_LOG_ENV)
    os.environ[WORKER_LOG_ENV] = "critical"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(WORKER_LOG_ENV, None)
        else:
            os.environ[WORKER_LOG_ENV] = saved


def _print_failures(ledger: Ledger, production_dir: Path, limit: int = 20) -> None:
    from .status import render_errors, render_table
    from .tasks import log_path

    rows = [t for t in ledger.tasks(ERROR)] + [t for t in ledger.tasks(CANCELLED)]
    print(f"BXRun: {len(rows)} task(s) did not succeed:")
    table = []
    for t in rows[:limit]:
        path = log_path(production_dir, t.dirname)
        table.append((t.task_id, t.state, t.attempts, t.reason or "", path or "-"))
    print(render_table(("task", "state", "attempts", "error", "log"), table))
    if len(rows) > limit:
        print(f"... and {len(rows) - limit} more (BXRun --status -o {production_dir})")
    print("by error:\n" + render_errors(ledger))
    print("BXRun: rerun the same command to retry them.")


def run_production(plan, backend, request, options: ProductionOptions, timerc) -> int:
    """Run ``plan`` to completion on ``backend``; 0 iff every task succeeded."""
    import dask
    from distributed import Client

    production_dir = Path(plan.production_dir)
    ledger = Ledger.create(production_dir)
    try:
        report = ledger.reconcile(plan.tasks, plan.done, note=f"driver started (PID {os.getpid()})")
        if report.describe():
            print(f"BXRun: ledger: {report.describe()}")
        if not ledger.ids_in_state(PENDING):
            return _finish(plan, ledger, timerc, options, engine=None)
        with _DaskLogToFile(production_dir), _quiet_workers(), \
                dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            running = backend.start(request)
            try:
                with Client(running.cluster, security=running.security, set_as_default=False) as client:
                    if running.dashboard_link:
                        print(f"BXRun: dashboard {running.dashboard_link}")
                    engine = Engine(plan, ledger, client, running, options, timerc)
                    engine.start()
                    try:
                        if options.interactive:
                            from .shell import run_shell

                            finished = run_shell(engine)
                        else:
                            finished = _monitor_batch(engine, options)
                    finally:
                        engine.close()
            finally:
                running.close()
        if not finished:
            print(f"BXRun: stopped; rerun the same command to resume "
                  f"({len(ledger.ids_in_state(PENDING))} tasks left)")
            return 1
        return _finish(plan, ledger, timerc, options, engine)
    finally:
        ledger.close()


def _monitor_batch(engine: Engine, options: ProductionOptions) -> bool:
    """Non-interactive monitor: one status line per interval until nothing is left."""
    last_tick = 0.0
    try:
        while True:
            engine.wait_idle(options.interval)
            # When everything left is waiting for a retry, tick at once, but not in a loop.
            time.sleep(max(0.0, last_tick + MIN_TICK_GAP - time.monotonic()))
            last_tick = time.monotonic()
            for notice in engine.tick():
                print(f"BXRun: {notice}", flush=True)
            print(engine.status_line(), flush=True)
            if engine.finished():
                return True
    except KeyboardInterrupt:
        engine.stop("interrupted")
        raise


def _finish(plan, ledger: Ledger, timerc, options: ProductionOptions, engine: Engine | None) -> int:
    """End of production: aggregate if everything succeeded, otherwise list failures.
    The exit code says whether every task succeeded; an aggregator failing is reported but
    does not turn a complete production into a failed one (rerunning redoes aggregation)."""
    production_dir = Path(plan.production_dir)
    counts = ledger.counts()
    total = sum(counts.values())
    if counts[DONE] != total:
        _print_failures(ledger, production_dir)
        return 1
    ledger.note("production complete")
    ok = run_aggregators(production_dir, plan.script.name, ledger, timerc, options.verbose,
                         out=lambda line: print(f"BXRun: {line}"))
    this_run = engine.completed_this_run if engine is not None else 0
    elapsed = f" in {time.time() - engine.started:.0f} s" if engine is not None else ""
    retried = sum(1 for _, (_, attempts) in ledger.runtimes().items() if attempts and attempts > 1)
    print(f"BXRun: production complete: {total} tasks done ({this_run} this run{elapsed}, "
          f"{retried} needed more than one attempt); results in {production_dir / 'results'}")
    if not ok:
        print("BXRun: warning: some aggregators failed (above); the tasks themselves all "
              "succeeded. Fix the cause and run 'aggregate' in the monitor, or rerun this command.")
    return 0


def print_status(production_dir: Path) -> int:
    """``BXRun --status -o X``: the ledger's view, no cluster."""
    from .lock import ProductionLock
    from .status import render_ledger_report

    ledger = Ledger.open_readonly(Path(production_dir))
    try:
        print(render_ledger_report(ledger, production_dir))
    finally:
        ledger.close()
    print(ProductionLock(production_dir).holder_status())
    return 0


def rebuild_ledger(plan) -> int:
    """``BXRun --rebuild-ledger -o X``: a fresh ledger from the plan and the results on disk."""
    report = rebuild(Path(plan.production_dir), plan.tasks, plan.done)
    print(f"BXRun: ledger rebuilt: {len(plan.tasks)} tasks, {len(plan.done)} done on disk, "
          f"{len(plan.tasks) - len(plan.done)} pending" + (f" ({report.describe()})" if report.describe() else ""))
    return 0


