"""timerc ``[slurm]`` turned into ``SLURMCluster`` arguments.

Every key the user leaves out is left to dask-jobqueue, which then reads the user's own
``~/.config/dask/jobqueue.yaml`` (``jobqueue.slurm.*``): people who already have a working
dask-jobqueue set-up keep it. Only ``cores`` and ``memory``, which dask-jobqueue refuses to
guess, get a default here, and the worker logs always go under the production directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import psutil
from dask.utils import parse_bytes

from timecal_core.config import positive_int_setting, setting_lines
from timecal_core.errors import UserError

SECTION = "slurm"

#: key -> help, in the order the README documents them.
KEYS = {
    "partition": "SLURM partition (-p); 'queue' is accepted as a synonym",
    "queue": "synonym of partition",
    "account": "account to charge (-A)",
    "cores": "cores per job (default 1)",
    "processes": "Dask worker processes per job (default: one per core, tasks are subprocesses)",
    "memory": "memory per job, e.g. 4GB (default 2GB)",
    "walltime": "job time limit, HH:MM:SS",
    "job_extra_directives": "extra sbatch options, one per line, without #SBATCH (timerc drops # lines), e.g. --qos=normal",
    "prologue": "shell lines run in the job before the worker starts (e.g. the CMSSW set-up)",
    "jobs": "number of jobs to start (default 1); or use adapt_min/adapt_max",
    "adapt_min": "adaptive scaling: minimum number of jobs",
    "adapt_max": "adaptive scaling: maximum number of jobs",
    "interface": "network interface of the workers (and of the scheduler unless scheduler_interface)",
    "scheduler_interface": "interface the scheduler listens on (multi-homed login nodes)",
    "contact_address": "address advertised to workers, e.g. tcp://login1.example:8786 (NAT, tunnels)",
    "death_timeout": "seconds a worker waits for the scheduler before exiting",
    "connect_timeout": "seconds a running job may take to connect its worker (default 120)",
    "max_replacements": "jobs replaced after dying without a worker or hanging, before giving up (default 10)",
    "python": "Python of the workers (default: the one running BXRun)",
    "local_directory": "worker scratch directory, e.g. $TMPDIR",
    "job_name": "job name shown by squeue (default timecal)",
}


def _positive_int(settings: dict, key: str) -> int | None:
    return positive_int_setting(SECTION, settings, key)


def _check_interface(key: str, name: str | None) -> None:
    if name and name not in psutil.net_if_addrs():
        have = ", ".join(sorted(psutil.net_if_addrs()))
        raise UserError(f"timerc [{SECTION}] {key} = {name!r}: no such network interface on this "
                        f"host; it has: {have}")


@dataclass(frozen=True)
class SlurmSettings:
    cluster_kwargs: dict
    jobs: int | None
    adapt: tuple[int, int] | None
    connect_timeout: float
    max_replacements: int
    partition: str | None
    scheduler_interface: str | None
    log_directory: Path


def parse_settings(raw: dict[str, str], output_dir: Path) -> SlurmSettings:
    """Validate ``[slurm]``; a wrong key or value is a one-line UserError naming it."""
    settings = {k: v for k, v in raw.items() if v is not None}
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise UserError(f"timerc [{SECTION}]: unknown setting(s) {', '.join(unknown)}; allowed: "
                        + ", ".join(KEYS))
    if settings.get("partition") and settings.get("queue"):
        raise UserError(f"timerc [{SECTION}]: give partition or queue (synonyms), not both")

    kwargs: dict = {}
    partition = (settings.get("partition") or settings.get("queue") or "").strip() or None
    if partition:
        kwargs["queue"] = partition
    for key in ("account", "walltime", "python", "local_directory"):
        if settings.get(key, "").strip():
            kwargs[key] = settings[key].strip()

    cores = _positive_int(settings, "cores") or dask.config.get("jobqueue.slurm.cores", None) or 1
    kwargs["cores"] = cores
    processes = _positive_int(settings, "processes") or dask.config.get("jobqueue.slurm.processes", None)
    kwargs["processes"] = processes or cores
    if kwargs["processes"] > cores:
        raise UserError(f"timerc [{SECTION}] processes = {kwargs['processes']} exceeds cores = {cores}: "
                        f"each worker process needs at least one core")
    memory = settings.get("memory", "").strip() or dask.config.get("jobqueue.slurm.memory", None) or "2GB"
    try:
        parse_bytes(memory)
    except ValueError:
        raise UserError(f"timerc [{SECTION}] memory = {memory!r}: expected a size such as 2GB or 1500MB") from None
    kwargs["memory"] = memory

    directives = setting_lines(settings.get("job_extra_directives", ""))
    if directives:
        kwargs["job_extra_directives"] = directives
    if settings.get("prologue", "").strip():
        kwargs["job_script_prologue"] = setting_lines(settings["prologue"])
    if settings.get("death_timeout", "").strip():
        kwargs["death_timeout"] = _positive_int(settings, "death_timeout")
    kwargs["job_name"] = settings.get("job_name", "").strip() or "timecal"

    interface = settings.get("interface", "").strip() or None
    scheduler_interface = settings.get("scheduler_interface", "").strip() or None
    _check_interface("interface", interface)
    _check_interface("scheduler_interface", scheduler_interface)
    if interface:
        kwargs["interface"] = interface
    # A fixed dashboard port collides between users of one login node: let the OS choose.
    scheduler_options: dict = {"dashboard_address": ":0"}
    if scheduler_interface:
        scheduler_options["interface"] = scheduler_interface
    contact = settings.get("contact_address", "").strip()
    if contact:
        if "://" not in contact or ":" not in contact.split("://", 1)[1]:
            raise UserError(f"timerc [{SECTION}] contact_address = {contact!r}: expected tcp://HOST:PORT")
        scheduler_options["contact_address"] = contact
    kwargs["scheduler_options"] = scheduler_options

    log_directory = output_dir / "logs"
    kwargs["log_directory"] = str(log_directory)

    jobs = _positive_int(settings, "jobs")
    adapt_min, adapt_max = _positive_int(settings, "adapt_min"), _positive_int(settings, "adapt_max")
    adapt = None
    if adapt_min is not None or adapt_max is not None:
        if jobs is not None:
            raise UserError(f"timerc [{SECTION}]: give either jobs or adapt_min/adapt_max, not both")
        adapt = (adapt_min or 1, adapt_max or adapt_min or 1)
        if adapt[0] > adapt[1]:
            raise UserError(f"timerc [{SECTION}] adapt_min = {adapt[0]} exceeds adapt_max = {adapt[1]}")
    elif jobs is None:
        jobs = 1
    timeout = _positive_int(settings, "connect_timeout") or 120
    replacements = settings.get("max_replacements", "").strip()
    if replacements and not replacements.isdigit():
        raise UserError(f"timerc [{SECTION}] max_replacements = {replacements!r}: expected an integer >= 0")
    return SlurmSettings(cluster_kwargs=kwargs, jobs=jobs, adapt=adapt, connect_timeout=float(timeout),
                         max_replacements=int(replacements or 10), partition=partition,
                         scheduler_interface=scheduler_interface or interface,
                         log_directory=log_directory)
