"""Making a running driver attachable: its control socket (any monitor of the owner may
attach while the driver runs: ``timecal attach OUT``) and its record ``OUT/.control/driver.json``
(pid, host, socket, heartbeat), refreshed at every heartbeat so that everyone can tell
whether the driver lives."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ..control.requests import Control
from ..control.unix_socket import ControlServer, write_record
from ..run.lock import _process_start

log = logging.getLogger("timecal.driver")


class ControlEndpoint:
    """The control server plus the driver's record (OUT/.control/driver.json); ``loop`` is
    the :class:`~timecal_core.driver.production.ProductionLoop` whose heartbeat refreshes it."""

    def __init__(self, server, record: dict, production_dir: Path, loop):
        self.server, self.record, self.production_dir, self.loop = server, record, production_dir, loop

    @property
    def connections(self) -> int:
        return self.server.connections

    def beat(self) -> None:
        self.record.update(heartbeat=time.time(), interval=self.loop.interval)
        write_record(self.production_dir, self.record)

    def close(self) -> None:
        self.server.close(linger=3.0)  # let attached monitors read the end
        self.record["stopped"] = "production complete" if self.loop.complete else \
            (self.loop.stopped or "ended")
        try:
            self.beat()
        except OSError:  # a full disk: the lock and the dead PID still tell the truth
            log.warning("driver record not written")


def open_control_endpoint(control: Control, loop, production_dir: Path,
                          every_tick: Callable[[], None]) -> ControlEndpoint:
    """Any monitor of the owner may attach while the driver runs (timecal attach OUT); the
    record tells everyone whether the driver lives, refreshed at every heartbeat."""
    server = ControlServer(control, production_dir)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "process_start": _process_start(os.getpid()), "socket": str(server.path),
              "started": time.time(), "heartbeat": time.time(), "interval": loop.interval,
              "production": str(production_dir), "stopped": None}
    served = ControlEndpoint(server, record, production_dir, loop)
    served.beat()

    def tick() -> None:
        served.beat()
        every_tick()

    loop.on_tick = tick
    return served
