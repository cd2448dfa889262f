"""Where the driver's own log goes: Dask and timecal log lines would clobber the monitor and
the status lines, so while a production runs they go to ``OUT/logs/driver.log``, and the
worker processes it starts stay quiet (the ledger records failures with their logs).

Quiet includes Ctrl-C: a driver in the foreground of a terminal shares its process group
with the local worker processes it starts, so the terminal's SIGINT reaches every one of
them and each would print a traceback. They ignore it instead (started while the driver
ignores it, which a new Python keeps; and :func:`dask_setup`, run as a Dask preload in
every worker, for one the nanny restarts later); the driver alone hears Ctrl-C and stops
them cleanly."""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

LOG_DIR = "logs"
DRIVER_LOG = "driver.log"
WORKER_LOG_ENV = "DASK_LOGGING__DISTRIBUTED"  # read by worker processes when they start
WORKER_PRELOAD_ENV = "DASK_DISTRIBUTED__WORKER__PRELOAD"


def driver_log_path(production_dir: Path) -> Path:
    return Path(production_dir) / LOG_DIR / DRIVER_LOG


class _QuietStreamHandler(logging.StreamHandler):
    """A log line that cannot be written (a full disk) is lost without a word: the driver
    says what matters about the disk itself, once, and a traceback per line helps nobody."""

    def handleError(self, record) -> None:  # noqa: N802 (logging's name)
        pass


class DaskLogToFile:
    """Dask's own log lines would clobber the shell and the status lines: while the driver
    runs they go to ``<output>/logs/driver.log`` instead."""

    def __init__(self, production_dir: Path):
        self.path = production_dir / LOG_DIR / DRIVER_LOG
        self._saved: list = []

    def __enter__(self):
        from ..contract.trust import open_append, owned_dir

        owned_dir(self.path.parent)
        # opened here, never through a symlink, rather than by logging.FileHandler's name
        self.handler = _QuietStreamHandler(os.fdopen(open_append(self.path), "a", encoding="utf-8"))
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
        try:
            self.handler.close()
            self.handler.stream.close()
        except OSError:  # its last lines did not fit on a full disk: the error says why
            pass


@contextmanager
def quiet_workers():
    """Worker processes started by the backend (now or when a dead one is replaced) log
    every failed task to their stderr, which on a local cluster is the user's terminal;
    the ledger already records failures with their logs, so keep workers quiet."""
    wanted = {WORKER_LOG_ENV: "critical", WORKER_PRELOAD_ENV: repr([__name__])}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def workers_ignore_interrupts():
    """Around starting a cluster: its processes start with SIGINT ignored (see the module's
    docstring); the driver's own handling comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


def dask_setup(worker) -> None:
    """Dask preload (``distributed.worker.preload``) of every worker the driver starts: the
    terminal's Ctrl-C is the driver's to handle, not the worker's."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
