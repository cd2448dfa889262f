"""The core's view of a running Dask cluster, whatever started it.

Backends (plugins) subclass :class:`RunningCluster` when they know more than Dask does,
typically the batch system's own view of its jobs, which dask-jobqueue does not watch
(jobs that die before their worker connects are otherwise never noticed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class BatchJob:
    """One batch-system job as the scheduler reports it."""

    job_id: str
    state: str  # e.g. PENDING, RUNNING, COMPLETED, CANCELLED, idle, held...
    reason: str = ""  # pending reason, HoldReason, exit reason
    worker: str = ""  # dask worker name/address when known
    runtime: str = ""


class RunningCluster:
    """A started Dask cluster plus what the monitor may ask of it.

    ``cluster`` is any ``distributed`` cluster object (``LocalCluster``, ``SLURMCluster``...).
    ``security`` is the :class:`distributed.security.Security` every client of this cluster
    must present (:mod:`timecal_core.run.cluster_security`); by default the cluster's own.
    """

    #: Extra monitor commands a backend offers: name -> (callable(arg: str) -> str, help).
    commands: dict[str, tuple[Callable[[str], str], str]] = {}
    #: Set (one line, why) when the cluster is gone for good, e.g. a gateway stopped it: the
    #: driver then stops the production, which a rerun resumes.
    gone: str = ""

    def __init__(self, cluster, backend: str, security=None):
        self.cluster = cluster
        self.backend = backend
        self.security = security if security is not None else getattr(cluster, "security", None)

    @property
    def dashboard_link(self) -> str:
        """Where the dashboard really listens: distributed's own link names the scheduler's
        host even when the dashboard is bound to 127.0.0.1 only (batch backends' default)."""
        try:
            link = self.cluster.dashboard_link
        except Exception:  # no bokeh, or the dashboard is off
            return ""
        try:
            from distributed.comm.utils import get_tcp_server_address

            host = get_tcp_server_address(self.cluster.scheduler.http_server)[0]
        except Exception:  # scheduler in another process: distributed's link is all we know
            return link
        if host in ("", "0.0.0.0", "::"):
            return link
        parts = urlsplit(link)
        netloc = f"[{host}]" if ":" in host else host
        return urlunsplit(parts._replace(netloc=f"{netloc}:{parts.port}"))

    def requested(self) -> int | None:
        """How many workers the cluster was asked for (None when unknown)."""
        plan = getattr(self.cluster, "plan", None)
        return len(plan) if plan is not None else None

    def describe_security(self) -> str:
        """One line for the monitor's ``client`` command when ``security`` is not the kind
        timecal makes (:func:`timecal_core.run.cluster_security.describe` says those); ""
        by default."""
        return ""

    def scale(self, n: int) -> None:
        self.cluster.scale(n)

    def retire(self, addresses: list[str]) -> None:
        """Remove exactly these workers (scheduler addresses) and lower the cluster's size
        accordingly; ``scale`` alone would pick the workers itself, busy or not."""
        info = self.cluster.scheduler_info.get("workers", {})
        names = [info[a]["name"] for a in addresses if a in info]
        if names:
            self.cluster.sync(self.cluster.scale_down, names)

    def adapt(self, minimum: int, maximum: int) -> None:
        self.cluster.adapt(minimum=minimum, maximum=maximum)

    def batch_jobs(self) -> list[BatchJob]:
        """The batch system's jobs of this cluster (empty for backends without one)."""
        return []

    def supervise(self) -> list[str]:
        """Called once per monitor interval: detect and repair what Dask does not see
        (e.g. replace jobs that ended before their worker connected). Returns one-line
        notices for the user."""
        return []

    def close(self) -> None:
        try:
            self.cluster.close()
        finally:
            forget_worker_credentials(self.cluster)


#: The names of the worker credential files timecal writes for batch jobs (see
#: timecal_core.run.cluster_security.with_worker_files): the only files the cluster's close removes.
WORKER_FILE_PREFIX = ".timecal-worker-"


def forget_worker_credentials(cluster: Any) -> None:
    """Delete the worker certificate, key and CA copy timecal wrote for the cluster's batch
    jobs, as soon as it is closed. Found through dask's public API (the cluster's
    ``security``, ``get_tls_config_for_role``): only files named by timecal are removed,
    never a site's certificates."""
    import os

    security = getattr(cluster, "security", None)
    if security is None:
        return
    for value in security.get_tls_config_for_role("worker").values():
        if isinstance(value, str) and "\n" not in value and os.path.basename(value).startswith(WORKER_FILE_PREFIX):
            try:
                os.unlink(value)
            except FileNotFoundError:
                pass
