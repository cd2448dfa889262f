"""Registers the ``slurm`` backend and starts its cluster.

Everything that can be checked before a production waits in the queue is checked here, so
that a typo in timerc costs seconds, not an afternoon: the client commands exist, SLURM
accepts the real job script (``sbatch --test-only``), and the first jobs either connect,
wait in the queue, or fail with a message saying why (``timecal_core.batch.supervision``).
"""

from __future__ import annotations

import tempfile

from timecal_core.batch.supervision import start_supervised
from timecal_core.contract.hookspecs import BackendRequest, ExecutionBackend, hookimpl
from timecal_core.run.cluster_security import without_dashboard

from . import slurmcli
from .cluster import SlurmRunningCluster
from .settings import SECTION, SETTINGS, parse_settings


@hookimpl
def timecal_backends():
    yield ExecutionBackend(
        name="slurm", start=start, settings=SETTINGS, check=check,
        description="Dask workers in SLURM jobs ([slurm] partition, cores, memory, walltime, jobs...)")


def check(settings, output_dir) -> None:
    """timerc [slurm] and the batch commands, checked when the production is planned."""
    from timecal_core.run.cluster_security import dashboard_address

    parse_settings(without_dashboard(settings), output_dir)
    dashboard_address(SECTION, settings)
    slurmcli.require_commands()


def start(request: BackendRequest) -> SlurmRunningCluster:
    settings = parse_settings(without_dashboard(request.settings), request.output_dir)
    slurmcli.require_commands()
    from dask_jobqueue import SLURMCluster

    partition = settings.own["partition"]
    where = f"timerc [{SECTION}] partition = {partition}" if partition else f"timerc [{SECTION}], default partition"

    def test_only(cluster) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="timecal-slurm-") as script:
            script.write(cluster.job_script())
            script.flush()
            slurmcli.validate_job_script(script.name, where)

    return start_supervised(SlurmRunningCluster, SLURMCluster, settings, request.settings,
                            request.output_dir, notes=request.notes, check=test_only)
