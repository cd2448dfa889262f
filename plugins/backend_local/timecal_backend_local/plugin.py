"""A Dask LocalCluster sized from timerc ``[local]``.

One thread per worker: tasks are subprocesses (cmsRun, the emulator), so threads would only
compete for the same core. Scheduler, workers, nannies and dashboard bind to 127.0.0.1 on
free ports: two users on one login node must never collide on a fixed port. Loopback is
shared by every user of the node, so every Dask connection is TLS with mutual
authentication (:mod:`timecal_core.run.cluster_security`): only this production's processes hold the
key. The dashboard (read-only, no authentication) can be turned off; it then serves only
the health check. The scheduler, nannies and workers keep their scratch space in the
production's private ``.dask`` directory, not in a ``/tmp/dask-scratch-space`` that another
user may have made first.
"""

from __future__ import annotations

import os

from timecal_core.contract.running_cluster import RunningCluster
from timecal_core.config.timerc import positive_int_setting
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest, ExecutionBackend, hookimpl
from timecal_core.run.cluster_security import HEALTH_ONLY, cluster_security, scratch_config

SETTINGS = ("workers", "memory_limit", "dashboard")
HOST = "127.0.0.1"


def _dashboard(settings: dict) -> bool:
    value = settings.get("dashboard", "yes").strip().lower()
    if value not in ("yes", "true", "on", "1", "", "no", "false", "off", "0"):
        raise UserError(f"timerc [local] dashboard = {settings['dashboard']!r}: expected yes or no "
                        f"(the local dashboard always listens on {HOST})")
    return value in ("yes", "true", "on", "1", "")


def check(settings, _output_dir=None) -> tuple[bool, int]:
    """``[local]`` validated (before anything is written): (dashboard, workers)."""
    settings = dict(settings)
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"timerc [local]: unknown setting(s) {', '.join(unknown)}; allowed: "
                        + ", ".join(SETTINGS))
    memory = settings.get("memory_limit", "").strip()
    if memory and memory != "auto":
        from dask.utils import parse_bytes

        try:
            parse_bytes(memory)
        except (ValueError, TypeError):
            raise UserError(f"timerc [local] memory_limit = {memory!r}: expected a size such as "
                            "2GB or 500MiB, or auto") from None
    return _dashboard(settings), positive_int_setting("local", settings, "workers") or os.cpu_count() or 1


def start(request: BackendRequest) -> RunningCluster:
    import dask
    from distributed import LocalCluster

    settings = dict(request.settings)
    dashboard, n_workers = check(settings)
    security = cluster_security()
    # The scheduler reads its HTTP routes when it starts, inside LocalCluster().
    routes = {} if dashboard else HEALTH_ONLY  # no page showing tasks, workers or logs
    scratch = scratch_config(request.output_dir)
    with dask.config.set({**routes, **scratch}):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=settings.get("memory_limit", "auto"),
            local_directory=scratch["temporary-directory"],
            host=HOST,
            protocol="tls://",
            security=security,
            scheduler_port=0,
            dashboard_address=f"{HOST}:0" if dashboard else None,
            # Without a dashboard the scheduler still opens its HTTP port: loopback, any port.
            scheduler_kwargs=None if dashboard else {"dashboard_address": f"{HOST}:0"},
        )
    return RunningCluster(cluster, "local", security=security)


@hookimpl
def timecal_backends():
    yield ExecutionBackend(name="local", start=start, check=check,
                           description="Dask LocalCluster on this machine ([local] workers, memory_limit, "
                                       "dashboard); TLS with mutual authentication")
