"""timerc ``[slurm]`` turned into ``SLURMCluster`` arguments: the keys only SLURM has
(partition, account, walltime, sbatch directives, job name). The keys every batch system
shares (cores, memory, prologue, addresses, timeouts...) are parsed by
``timecal_core.batch.supervision``; keys the user leaves out come from their own jobqueue.yaml.
"""

from __future__ import annotations

from pathlib import Path

import dask

from timecal_core.batch.settings import BatchSettings, batch_section, parse_batch_settings
from timecal_core.config.timerc import setting_lines
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import Setting

SECTION = "slurm"
CONNECT_TIMEOUT = 120

OWN_KEYS = (
    Setting("partition", "text", help="SLURM partition (-p); 'queue' is accepted as a synonym"),
    Setting("queue", "text", help="synonym of partition"),
    Setting("account", "text", help="account to charge (-A)"),
    Setting("walltime", "text", help="job time limit, HH:MM:SS"),
    Setting("job_extra_directives", "lines", help="extra sbatch options, one per line, without #SBATCH "
            "(timerc drops # lines), e.g. --qos=normal"),
    Setting("job_name", "text", "timecal", "job name shown by squeue"),
)
SETTINGS = batch_section(SECTION, OWN_KEYS, CONNECT_TIMEOUT, help=(
    "Dask workers in SLURM jobs (``--dask slurm``). Keys left out come from your own "
    "``~/.config/dask/jobqueue.yaml`` (``jobqueue.slurm.*``) where dask-jobqueue reads one."))


def parse_settings(raw: dict[str, str], output_dir: Path) -> BatchSettings:
    """Validate ``[slurm]``; a wrong key or value is a one-line UserError naming it."""
    settings, own = parse_batch_settings(SETTINGS, raw, output_dir, OWN_KEYS)
    if own.get("partition") and own.get("queue"):
        raise UserError(f"timerc [{SECTION}]: give partition or queue (synonyms), not both")
    kwargs = settings.cluster_kwargs
    partition = (own.get("partition") or own.get("queue") or "").strip() or None
    if partition:
        kwargs["queue"] = partition
    for key in ("account", "walltime"):
        if own.get(key, "").strip():
            kwargs[key] = own[key].strip()
    directives = (setting_lines(own.get("job_extra_directives", ""))
                  or list(dask.config.get("jobqueue.slurm.job-extra-directives", None) or []))
    if not any(d.split("=")[0] in ("--requeue", "--no-requeue") for d in directives):
        # A job lost with its node is not to be run again by SLURM (JobRequeue=1, the default):
        # Dask has rerun its tasks already and supervision replaces it; requeued, it would come
        # back pending under the same id, its end never reported, only to be cancelled by
        # dask-jobqueue a few seconds later (seen on the multi-node test cluster).
        directives.append("--no-requeue")
    kwargs["job_extra_directives"] = directives
    kwargs["job_name"] = own.get("job_name", "").strip() or SETTINGS.default("job_name")
    settings.own["partition"] = partition
    return settings
