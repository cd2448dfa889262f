"""Registers the ``htcondor`` backend and starts its cluster.

The submit description dask-jobqueue generates is parsed by the HTCondor bindings before
anything is submitted, so a malformed ``submit_directives`` line fails at once with
HTCondor's own words instead of as a log line of a background submission.
"""

from __future__ import annotations

from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest, ExecutionBackend, hookimpl
from timecal_core.security import jobqueue_kwargs, without_dashboard

from .cluster import HTCondorRunningCluster
from .schedd import htcondor, require_commands
from .settings import SECTION, parse_settings


def submit_description(cluster):
    """The worker job as ``htcondor.Submit``: what condor_submit will be given."""
    try:
        return htcondor.Submit(cluster.job_script())
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"timerc [{SECTION}]: HTCondor cannot parse the worker's submit description "
                        f"({exc}); check submit_directives") from None


def start(request: BackendRequest) -> HTCondorRunningCluster:
    settings = parse_settings(without_dashboard(request.settings), request.output_dir)
    require_commands()
    from dask_jobqueue import HTCondorCluster

    settings.log_directory.mkdir(parents=True, exist_ok=True)
    try:
        cluster = HTCondorCluster(**jobqueue_kwargs(SECTION, request.settings, settings.cluster_kwargs,
                                                   request.output_dir))  # TLS, dashboard
    except (ValueError, TypeError) as exc:  # dask-jobqueue's own checks of the merged settings
        raise UserError(f"timerc [{SECTION}] / jobqueue.yaml: {exc}".replace("\n", " ")) from None
    try:
        submit_description(cluster)
        running = HTCondorRunningCluster(cluster, settings)
        if settings.adapt:
            running.adapt_jobs(*settings.adapt)
        else:
            cluster.scale(jobs=settings.jobs)
    except BaseException:
        cluster.close()
        raise
    return running


@hookimpl
def timecal_backends():
    yield ExecutionBackend(
        name="htcondor", start=start,
        description="Dask workers in HTCondor jobs ([htcondor] cores, memory, disk, submit_directives...)")
