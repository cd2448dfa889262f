"""A Dask LocalCluster sized from timerc ``[local]``.

One thread per worker: tasks are subprocesses (cmsRun, the emulator), so threads would only
compete for the same core. Scheduler and dashboard bind to localhost on free ports: two
users on one login node must never collide on a fixed port.
"""

from __future__ import annotations

import os

from timecal_core.backends import RunningCluster
from timecal_core.config import positive_int_setting
from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest, ExecutionBackend, hookimpl

SETTINGS = ("workers", "memory_limit", "dashboard")


def start(request: BackendRequest) -> RunningCluster:
    from distributed import LocalCluster

    settings = dict(request.settings)
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"timerc [local]: unknown setting(s) {', '.join(unknown)}; allowed: "
                        + ", ".join(SETTINGS))
    dashboard = settings.get("dashboard", "yes").lower() not in ("no", "false", "0", "off")
    cluster = LocalCluster(
        n_workers=positive_int_setting("local", settings, "workers") or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        memory_limit=settings.get("memory_limit", "auto"),
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address="127.0.0.1:0" if dashboard else None,
    )
    return RunningCluster(cluster, "local")


@hookimpl
def timecal_backends():
    yield ExecutionBackend(name="local", start=start,
                           description="Dask LocalCluster on this machine ([local] workers, memory_limit)")
