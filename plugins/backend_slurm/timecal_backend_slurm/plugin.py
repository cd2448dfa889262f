"""Registers the ``slurm`` backend and starts its cluster.

Everything that can be checked before a production waits in the queue is checked here, so
that a typo in timerc costs seconds, not an afternoon: the client commands exist, SLURM
accepts the real job script (``sbatch --test-only``), and the first jobs either connect,
wait in the queue, or fail with a message saying why.
"""

from __future__ import annotations

import tempfile

from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest, ExecutionBackend, hookimpl
from timecal_core.security import jobqueue_kwargs, without_dashboard

from . import slurmcli
from .cluster import SlurmRunningCluster
from .settings import SECTION, parse_settings


def _describe(settings) -> str:
    if settings.partition:
        return f"timerc [{SECTION}] partition = {settings.partition}"
    return f"timerc [{SECTION}], default partition"


def start(request: BackendRequest) -> SlurmRunningCluster:
    settings = parse_settings(without_dashboard(request.settings), request.output_dir)
    slurmcli.require_commands()
    from dask_jobqueue import SLURMCluster

    settings.log_directory.mkdir(parents=True, exist_ok=True)
    try:
        cluster = SLURMCluster(**jobqueue_kwargs(SECTION, request.settings, settings.cluster_kwargs,
                                                 request.output_dir))  # TLS, dashboard
    except (ValueError, TypeError) as exc:  # dask-jobqueue's own checks of the merged settings
        raise UserError(f"timerc [{SECTION}] / jobqueue.yaml: {exc}".replace("\n", " ")) from None
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="timecal-slurm-") as script:
            script.write(cluster.job_script())
            script.flush()
            slurmcli.validate_job_script(script.name, _describe(settings))
        running = SlurmRunningCluster(cluster, settings)
        if settings.adapt:
            running.adapt_jobs(*settings.adapt)
        else:
            cluster.scale(jobs=settings.jobs)
        running.await_first_worker()
    except BaseException:
        cluster.close()
        raise
    return running


@hookimpl
def timecal_backends():
    yield ExecutionBackend(
        name="slurm", start=start,
        description="Dask workers in SLURM jobs ([slurm] partition, cores, memory, walltime, jobs...)")
