"""timerc ``[htcondor]`` turned into ``HTCondorCluster`` arguments.

Keys the user leaves out are left to dask-jobqueue, which then reads the user's own
``~/.config/dask/jobqueue.yaml`` (``jobqueue.htcondor.*``). Only cores, memory and disk,
which dask-jobqueue refuses to guess, get defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import psutil
from dask.utils import parse_bytes

from timecal_core.config import positive_int_setting, setting_lines
from timecal_core.errors import UserError

SECTION = "htcondor"

#: key -> help, in the order the README documents them.
KEYS = {
    "cores": "request_cpus per job (default 1)",
    "processes": "Dask worker processes per job (default: one per core, tasks are subprocesses)",
    "memory": "request_memory per job, e.g. 4GB (default 2GB)",
    "disk": "request_disk per job, e.g. 5GB (default 2GB)",
    "submit_directives": 'extra submit lines "key = value", one per line, e.g. +JobFlavour = "workday"',
    "prologue": "shell lines run before the worker starts (e.g. the CMSSW set-up); joined with ';'",
    "log_directory": "where worker .out/.err/.log files go (default <output>/logs)",
    "jobs": "number of jobs to start (default 1); or use adapt_min/adapt_max",
    "adapt_min": "adaptive scaling: minimum number of jobs",
    "adapt_max": "adaptive scaling: maximum number of jobs",
    "interface": "network interface of the workers (and of the scheduler unless scheduler_interface)",
    "scheduler_interface": "interface the scheduler listens on (multi-homed login nodes)",
    "contact_address": "address advertised to workers, e.g. tcp://lxplus801.cern.ch:8786",
    "death_timeout": "seconds a worker waits for the scheduler before exiting",
    "connect_timeout": "seconds a running job may take to connect its worker (default 300)",
    "max_replacements": "held or failed jobs replaced before giving up (default 10)",
    "python": "Python of the workers (default: the one running BXRun)",
    "local_directory": "worker scratch directory, e.g. $_CONDOR_SCRATCH_DIR",
}


def _positive_int(settings: dict, key: str) -> int | None:
    return positive_int_setting(SECTION, settings, key)


def _size(settings: dict, key: str, default: str) -> str:
    value = settings.get(key, "").strip() or dask.config.get(f"jobqueue.{SECTION}.{key}", None) or default
    try:
        parse_bytes(value)
    except ValueError:
        raise UserError(f"timerc [{SECTION}] {key} = {value!r}: expected a size such as 2GB or 1500MB") from None
    return value


def submit_directives(text: str) -> dict[str, str]:
    """``key = value`` lines; ``+Attr`` (the classic spelling) and ``MY.Attr`` are both kept
    as written, condor_submit understands both."""
    directives = {}
    for line in setting_lines(text):
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"timerc [{SECTION}] submit_directives: {line!r} is not 'key = value' "
                            f"(e.g. +JobFlavour = \"workday\")")
        directives[key.strip()] = value.strip()
    return directives


def _check_interface(key: str, name: str | None) -> None:
    if name and name not in psutil.net_if_addrs():
        have = ", ".join(sorted(psutil.net_if_addrs()))
        raise UserError(f"timerc [{SECTION}] {key} = {name!r}: no such network interface on this "
                        f"host; it has: {have}")


@dataclass(frozen=True)
class HTCondorSettings:
    cluster_kwargs: dict
    jobs: int | None
    adapt: tuple[int, int] | None
    connect_timeout: float
    max_replacements: int
    scheduler_interface: str | None
    log_directory: Path


def parse_settings(raw: dict[str, str], output_dir: Path) -> HTCondorSettings:
    """Validate ``[htcondor]``; a wrong key or value is a one-line UserError naming it."""
    settings = {k: v for k, v in raw.items() if v is not None}
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise UserError(f"timerc [{SECTION}]: unknown setting(s) {', '.join(unknown)}; allowed: "
                        + ", ".join(KEYS))
    kwargs: dict = {}
    for key in ("python", "local_directory"):
        if settings.get(key, "").strip():
            kwargs[key] = settings[key].strip()
    cores = _positive_int(settings, "cores") or dask.config.get(f"jobqueue.{SECTION}.cores", None) or 1
    kwargs["cores"] = cores
    processes = _positive_int(settings, "processes") or dask.config.get(f"jobqueue.{SECTION}.processes", None)
    kwargs["processes"] = processes or cores
    if kwargs["processes"] > cores:
        raise UserError(f"timerc [{SECTION}] processes = {kwargs['processes']} exceeds cores = {cores}: "
                        f"each worker process needs at least one core")
    kwargs["memory"] = _size(settings, "memory", "2GB")
    kwargs["disk"] = _size(settings, "disk", "2GB")
    directives = submit_directives(settings.get("submit_directives", ""))
    if directives:
        kwargs["job_extra_directives"] = directives
    if settings.get("prologue", "").strip():
        kwargs["job_script_prologue"] = setting_lines(settings["prologue"])
    if settings.get("death_timeout", "").strip():
        kwargs["death_timeout"] = _positive_int(settings, "death_timeout")

    interface = settings.get("interface", "").strip() or None
    scheduler_interface = settings.get("scheduler_interface", "").strip() or None
    _check_interface("interface", interface)
    _check_interface("scheduler_interface", scheduler_interface)
    if interface:
        kwargs["interface"] = interface
    scheduler_options: dict = {"dashboard_address": ":0"}  # no fixed port to collide on
    if scheduler_interface:
        scheduler_options["interface"] = scheduler_interface
    contact = settings.get("contact_address", "").strip()
    if contact:
        if "://" not in contact or ":" not in contact.split("://", 1)[1]:
            raise UserError(f"timerc [{SECTION}] contact_address = {contact!r}: expected tcp://HOST:PORT")
        scheduler_options["contact_address"] = contact
    kwargs["scheduler_options"] = scheduler_options

    log_directory = Path(settings.get("log_directory", "").strip() or output_dir / "logs").expanduser()
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
    timeout = _positive_int(settings, "connect_timeout") or 300
    replacements = settings.get("max_replacements", "").strip()
    if replacements and not replacements.isdigit():
        raise UserError(f"timerc [{SECTION}] max_replacements = {replacements!r}: expected an integer >= 0")
    return HTCondorSettings(cluster_kwargs=kwargs, jobs=jobs, adapt=adapt, connect_timeout=float(timeout),
                            max_replacements=int(replacements or 10),
                            scheduler_interface=scheduler_interface or interface,
                            log_directory=log_directory)
