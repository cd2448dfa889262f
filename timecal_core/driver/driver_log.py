"""Where the driver's own log goes: Dask and timecal log lines would clobber the monitor and
the status lines, so while a production runs they go to ``OUT/logs/driver.log``, and the
worker processes it starts stay quiet (the ledger records failures with their logs)."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

LOG_DIR = "logs"
DRIVER_LOG = "driver.log"
WORKER_LOG_ENV = "DASK_LOGGING__DISTRIBUTED"  # read by worker processes when they start


def driver_log_path(production_dir: Path) -> Path:
    return Path(production_dir) / LOG_DIR / DRIVER_LOG


class DaskLogToFile:
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
def quiet_workers():
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
