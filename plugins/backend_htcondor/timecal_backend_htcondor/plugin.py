"""Registers the ``htcondor`` backend and starts its cluster.

The submit description dask-jobqueue generates is parsed by the HTCondor bindings before
anything is submitted, so a malformed ``submit_directives`` line fails at once with
HTCondor's own words instead of as a log line of a background submission; then the first
jobs either connect, wait in the queue, or fail with a message saying why
(``timecal_core.batch.supervision``).
"""

from __future__ import annotations

from timecal_core.batch.supervision import start_supervised
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest, ExecutionBackend, hookimpl
from timecal_core.run.cluster_security import without_dashboard

from .settings import SECTION, SETTINGS, parse_settings

# The HTCondor bindings (.schedd, .cluster) are imported when the backend starts, not when
# the plugin registers: every process that loads the plugins would import them, the Dask
# workers running tasks included, and the bindings resolve the host's name when imported,
# retrying for two minutes on a node whose name does not resolve.


@hookimpl
def timecal_backends():
    yield ExecutionBackend(
        name="htcondor", start=start, settings=SETTINGS, check=check,
        description="Dask workers in HTCondor jobs ([htcondor] cores, memory, disk, submit_directives...)")


def submit_description(cluster):
    """The worker job as ``htcondor.Submit``: what condor_submit will be given."""
    from .schedd import htcondor

    try:
        return htcondor.Submit(cluster.job_script())
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"timerc [{SECTION}]: HTCondor cannot parse the worker's submit description "
                        f"({exc}); check submit_directives") from None


def check(settings, output_dir) -> None:
    """timerc [htcondor] and the batch commands, checked when the production is planned."""
    from timecal_core.run.cluster_security import dashboard_address

    from .schedd import require_commands

    parse_settings(without_dashboard(settings), output_dir)
    dashboard_address(SECTION, settings)
    require_commands()


def start(request: BackendRequest):
    """An :class:`~timecal_backend_htcondor.cluster.HTCondorRunningCluster` with its first jobs."""
    settings = parse_settings(without_dashboard(request.settings), request.output_dir)
    from .cluster import HTCondorRunningCluster
    from .schedd import ScheddClient, require_commands

    require_commands()
    from dask_jobqueue import HTCondorCluster

    schedd = ScheddClient(settings.own["schedd"])
    schedd.locate()  # a wrong [htcondor] schedd fails now, not as a background submission error

    return start_supervised(HTCondorRunningCluster, HTCondorCluster, settings, request.settings,
                            request.output_dir, notes=request.notes, check=submit_description,
                            schedd=schedd)
