"""Running one production: reconcile the ledger, start the backend's cluster, let the
engine work, keep the driver's heartbeat, and end with aggregation or a list of failures.

The heartbeat (:class:`ProductionLoop`) belongs to the driver, not to the screen: every
interval it supervises the batch system, resubmits failed tasks and publishes the status on
the :class:`~timecal_core.control.requests.Bulletin`. Printing those lines (non-interactive runs) or
showing them above a prompt (the monitor) is the business of whoever reads the bulletin,
so the same driver can later run without any terminal.

SIGTERM and SIGHUP stop the driver like the monitor's ``exit``: a message, the ledger note
"driver stopped: signal ...", running tasks back to pending, the lock released; the next
run resumes.
"""

from __future__ import annotations

import dataclasses

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..control.requests import Bulletin, Control, describe_end
from ..ledger.records import CANCELLED, DONE, ERROR, PENDING, PLANNED
from ..ledger.sqlite_ledger import Ledger
from ..run.engine import Engine, MIN_TICK_GAP, ProductionOptions
from ..views.status_text import describe_left
from .aggregation import run_aggregators
from .control_endpoint import open_control_endpoint
from .driver_log import DaskLogToFile, driver_log_path, quiet_workers, workers_ignore_interrupts
from .notify import SECTION as NOTIFY
from .notify import Notifier
from .status_page_writer import StatusPageWriter

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
log = logging.getLogger("timecal.driver")

class ProductionLoop:
    """The driver's heartbeat. ``run()`` blocks until nothing is left to run, or until
    :meth:`stop`; while ``linger()`` is true (a monitor is attached: its user may still
    retry failed tasks) a production with failures stays up."""

    def __init__(self, engine: Engine, bulletin: Bulletin, interval: float,
                 linger: Callable[[], bool] = lambda: False,
                 on_tick: Callable[[], None] = lambda: None):
        self.engine = engine
        self.on_tick = on_tick
        self.bulletin = bulletin
        self.interval = interval
        self.linger = linger
        self.stopped: str | None = None  # why, once stopped
        self.complete = False
        self._wake = threading.Event()
        self._announced_end = False

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._wake.set()

    def rearm(self) -> None:
        """Something was resubmitted: announce the end again when it comes."""
        self._announced_end = False
        self._wake.set()

    def release(self) -> None:
        """Stop lingering: with nothing left to run, end at the next look."""
        self.linger = lambda: False
        self._announced_end = False
        self._wake.set()

    def stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
        self._wake.set()

    def run(self) -> bool:
        """True when the production ended by itself (everything ran), False when stopped."""
        next_tick = time.monotonic() + self.interval
        last_tick = 0.0
        while self.stopped is None:
            # Wake at the interval, or as soon as nothing is left in flight (but not in a loop).
            wait = max(0.0, next_tick - time.monotonic())
            idle = self.engine.wait_idle(min(wait, 0.5))
            if self._wake.is_set():
                self._wake.clear()
                next_tick = min(next_tick, time.monotonic() + self.interval)
            if self.engine.broken is not None:  # ledger or disk: nothing can be recorded any more
                raise self.engine.broken
            if self.stopped is not None:
                break
            now = time.monotonic()
            early = idle and not self._announced_end and now - last_tick >= MIN_TICK_GAP
            if now < next_tick and not early:
                continue
            last_tick, next_tick = now, now + self.interval
            notices = self.engine.tick()
            for notice in notices:
                self.bulletin.publish(notice, kind="notice")
            if self.engine.running.gone:  # the cluster is no more: nothing can run on it
                self.stop(self.engine.running.gone)
                break
            line, full = self.engine.status_texts()
            self.bulletin.publish(line, kind="status", full=full)
            self.on_tick()
            if not self.engine.finished():
                self._announced_end = False
                continue
            if self.engine.all_done():
                self.complete = True
                self.bulletin.publish("production complete", kind="complete")
                return True
            if not self.linger():
                return True
            if not self._announced_end:
                self._announced_end = True
                self.bulletin.publish(describe_end({"counts": self.engine.ledger.counts()}),
                                      kind="end")
        return False


@contextmanager
def _stop_on_signals(loop: ProductionLoop):
    """SIGTERM/SIGHUP stop the loop (main thread only: elsewhere, e.g. under a test
    harness's thread, the default handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        loop.stop(f"signal {signal.Signals(signum).name}")

    saved = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def _print_failures(ledger: Ledger, production_dir: Path, say: Callable[[str], None],
                    shown: int = 5) -> None:
    """What did not succeed, once per cause and message: the count, the message (once), a
    few of its tasks and the log of one (``BXRun --status`` and ``errors`` have the rest)."""
    from ..run.tasks import log_path

    groups: dict[tuple[str, str], list] = {}
    for t in ledger.tasks(ERROR):
        groups.setdefault((t.cause or "?", t.reason or "?"), []).append(t)
    cancelled = ledger.tasks(CANCELLED)
    n = sum(len(g) for g in groups.values()) + len(cancelled)
    say(f"BXRun: {n} task(s) did not succeed ({n - len(cancelled)} failed for good in "
        f"{len(groups)} way(s), {len(cancelled)} cancelled):")
    for (cause, reason), rows in sorted(groups.items(), key=lambda item: -len(item[1])):
        ids = sorted(t.task_id for t in rows)
        listed = ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
        say(f"  {len(rows)} x {cause}: {reason}")
        say(f"      tasks {listed}; log of {ids[0]}: "
            f"{log_path(production_dir, next(t for t in rows if t.task_id == ids[0]).dirname) or '-'}")
    if cancelled:
        ids = sorted(t.task_id for t in cancelled)
        say(f"  {len(ids)} cancelled: " + ", ".join(ids[:shown])
            + (f" and {len(ids) - shown} more" if len(ids) > shown else ""))
    say(f"BXRun: rerun the same command to retry them (BXRun --status -o {production_dir} "
        "shows where they fail).")


def run_production(plan, backend, request, options: ProductionOptions, timerc,
                   pilot: bool = False) -> int:
    """Run ``plan`` to completion on ``backend``; 0 iff every task succeeded. A ``pilot``
    (``BXRun --pilot``: a few tasks of the grid) ends without aggregating or announcing a
    complete production: the production is what follows it.

    The driver serves its control channel the whole time (monitors attach with ``timecal
    attach``) and prints what its heartbeat publishes; its last lines (aggregation, the
    failures, how to resume) are published too, so that an attached monitor shows them."""
    import dask
    from distributed import Client

    production_dir = Path(plan.production_dir)
    ledger = Ledger.create(production_dir)
    try:
        report = ledger.reconcile(plan.tasks, plan.done, note=f"driver started (PID {os.getpid()})",
                                  run=getattr(plan, "run", None))
        if report.describe():
            print(f"BXRun: ledger: {report.describe()}")
        if not ledger.ids_in_state(PENDING):
            return _finish(plan, ledger, timerc, options, engine=None, say=print, pilot=pilot)
        bulletin = Bulletin()
        bulletin.echo = _print_item
        notifier = Notifier(timerc.section(NOTIFY) if timerc is not None else {},
                            production_dir, note=ledger.note)
        # driver.log stays open to the end: the last notices (a mail refused) go there too
        with DaskLogToFile(production_dir):
            with quiet_workers(), dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                with workers_ignore_interrupts():  # Ctrl-C is the driver's: it stops them itself
                    # Its ledger's history: e.g. the batch jobs an earlier (killed) driver left behind.
                    running = backend.start(dataclasses.replace(request, notes=lambda text, limit: [
                        e.detail for e in ledger.production_events(limit, containing=text)]))
                try:
                    with Client(running.cluster, security=running.security, set_as_default=False) as client:
                        if running.dashboard_link:
                            bulletin.publish(f"dashboard {running.dashboard_link}")
                        engine = Engine(plan, ledger, client, running, options, timerc,
                                        notify=lambda text: bulletin.publish(text, kind="task"),
                                        driver_log=driver_log_path(production_dir),
                                        on_exhausted=lambda text, tasks: (
                                            text and bulletin.publish(text, kind="failed"),
                                            notifier.failed_for_good(text, tasks)))
                        loop = ProductionLoop(engine, bulletin, options.interval)
                        control = Control(engine, loop, bulletin, aggregate=lambda out: run_aggregators(
                            production_dir, plan.script.name, ledger, timerc, engine.verbose, out=out))
                        # The channel outlives the cluster: attached monitors see the last lines.
                        page = StatusPageWriter(engine, loop, production_dir)
                        server = open_control_endpoint(control, loop, production_dir,
                                                       every_tick=lambda: (notifier.flush(), page.write()))
                        loop.linger = lambda: server.connections > 0
                        engine.start()
                        try:
                            with _stop_on_signals(loop):
                                finished = loop.run()
                            if not finished:
                                engine.stop(loop.stopped or "stopped")
                        except BaseException:
                            engine.stop("interrupted")
                            server.close()
                            raise
                        finally:
                            engine.close()
                finally:
                    running.close()
            final: list[str] = []

            def say(line: str) -> None:
                final.append(line)
                bulletin.publish(line, kind="final")

            try:
                if not finished:
                    why = loop.stopped or "stopped"
                    say(f"BXRun: {why}; {describe_left(ledger.counts())}: rerun the same command to resume")
                    code = 128 + signal.Signals[why.split()[1]].value if why.startswith("signal ") else 1
                else:
                    code = _finish(plan, ledger, timerc, options, engine, say=say, pilot=pilot)
                notifier.flush()
                if loop.complete and pilot:
                    pass  # the pilot's report follows on the terminal; the production is to come
                elif loop.complete:
                    notifier.send("complete", f"production complete: {sum(ledger.counts().values())} "
                                  "tasks done", "\n".join(final))
                else:
                    notifier.send("stopped", f"driver ended ({loop.stopped or 'some tasks failed'}), "
                                  f"exit code {code}", "\n".join(final))
                bulletin.publish(f"driver ended (exit code {code})", kind="ended", code=code)
                return code
            finally:
                server.close()
                page.write(final=True)
    finally:
        ledger.close()


def _print_item(item: dict) -> None:
    """Every published line on the driver's stdout (the terminal, or driver.log when
    detached): status and final lines as they are, notices after ``BXRun:``."""
    if item["kind"] in ("complete", "ended"):
        return
    prefix = "" if item["kind"] in ("status", "final") else "BXRun: "
    print(prefix + item["text"], flush=True)


def _finish(plan, ledger: Ledger, timerc, options: ProductionOptions, engine: Engine | None,
            say: Callable[[str], None], pilot: bool = False) -> int:
    """End of production: aggregate if everything succeeded, otherwise list failures.
    The exit code says whether every task succeeded; an aggregator failing is reported but
    does not turn a complete production into a failed one (rerunning redoes aggregation)."""
    production_dir = Path(plan.production_dir)
    counts = ledger.counts()
    total = sum(counts.values())
    if counts[DONE] + counts[PLANNED] != total:
        _print_failures(ledger, production_dir, say)
        return 1
    if pilot:
        ledger.note(f"pilot complete: {counts[DONE]} of the grid's {total} tasks done")
        say(f"BXRun: pilot complete: {counts[DONE]} of the grid's {total} tasks done, "
            f"{counts[PLANNED]} planned")
        return 0
    ledger.note("production complete")
    ok = run_aggregators(production_dir, plan.script.name, ledger, timerc, options.verbose,
                         out=lambda line: say(f"BXRun: {line}"))
    this_run = engine.completed_this_run if engine is not None else 0
    elapsed = f" in {time.time() - engine.started:.0f} s" if engine is not None else ""
    retried = sum(1 for _, (_, attempts) in ledger.runtimes().items() if attempts and attempts > 1)
    say(f"BXRun: production complete: {total} tasks done ({this_run} this run{elapsed}, "
        f"{retried} needed more than one attempt); results in {production_dir / 'results'}")
    if not ok:
        say("BXRun: warning: some aggregators failed (above); the tasks themselves all "
            "succeeded. Fix the cause and run 'aggregate' in the monitor, or rerun this command.")
    return 0

