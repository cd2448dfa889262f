"""The driver writes ``OUT/status.html`` at every heartbeat from what the heartbeat computed
(the page itself is rendered by :mod:`timecal_core.views.status_html`); a full disk only
costs the page, never the production."""

from __future__ import annotations

import logging
from pathlib import Path

from ..control.unix_socket import describe_driver, read_record
from ..run.engine import Engine
from ..views.status_html import render, write
from ..views.status_text import render_cluster

log = logging.getLogger("timecal.driver")


class StatusPageWriter:
    """OUT/status.html, rewritten at every heartbeat from what the heartbeat computed
    (``loop``: the :class:`~timecal_core.driver.production.ProductionLoop`, for its interval)."""

    def __init__(self, engine: Engine, loop, production_dir: Path):
        self.engine, self.loop, self.production_dir = engine, loop, production_dir

    def write(self, final: bool = False) -> None:
        snap = self.engine.last_snapshot
        if final or snap is None:  # the cluster is gone at the end: the ledger's view only
            snap = self.engine.snapshot(with_cluster=False)
        summary = {"counts": snap.counts, "rate": snap.rate, "eta": snap.eta, "running": not final,
                   "elapsed": snap.elapsed, "cluster": render_cluster(snap.cluster),
                   "batch": snap.batch_jobs,
                   "driver": describe_driver(read_record(self.production_dir))}
        try:
            write(self.production_dir, render(self.engine.ledger, self.production_dir, summary,
                                              self.loop.interval, order=getattr(self.engine.plan, "order", ())))
        except OSError as exc:  # a full disk must not stop the production
            log.warning("status page not written: %s", exc)
