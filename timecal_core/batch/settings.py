"""A timerc batch section (``[slurm]``, ``[htcondor]``), validated: the keys both batch
systems understand, parsed once here; a backend adds only its own keys. Keys the user leaves
out are left to dask-jobqueue, which then reads the user's ``~/.config/dask/jobqueue.yaml``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import dask
import psutil
from dask.utils import parse_bytes

from ..config.timerc import positive_int_setting, setting_lines, size_setting_or_range
from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection


#: timerc keys both batch backends understand, in the order the reference lists them
#: (``{connect_timeout}``: the backend's default, see :func:`batch_section`).
COMMON_KEYS = (
    Setting("cores", "integer", "1 (or jobqueue.yaml's)", "cores per job", minimum=1),
    Setting("processes", "integer", "one per core", "Dask worker processes per job (tasks are "
            "subprocesses)", minimum=1),
    Setting("memory", "size", "2GB (or jobqueue.yaml's)", "memory per job"),
    Setting("prologue", "lines", help="shell lines run in the job before the worker starts (e.g. the "
            "CMSSW set-up)"),
    Setting("jobs", "integer", "1", "number of jobs to start; or use adapt_min/adapt_max", minimum=1),
    Setting("adapt_min", "integer", help="adaptive scaling: minimum number of jobs", minimum=1),
    Setting("adapt_max", "integer", help="adaptive scaling: maximum number of jobs", minimum=1),
    Setting("interface", "text", help="network interface of the workers (and of the scheduler unless "
            "scheduler_interface), e.g. ib0"),
    Setting("scheduler_interface", "text", help="interface the scheduler listens on (multi-homed "
            "login nodes)"),
    Setting("contact_address", "text", help="address advertised to workers, "
            "tls://HOST:PORT (NAT, tunnels); the scheduler listens on its port"),
    Setting("death_timeout", "integer", help="seconds a worker waits for the scheduler before "
            "exiting", minimum=1),
    Setting("connect_timeout", "integer", "{connect_timeout}", "seconds a running job may take to "
            "connect its worker", minimum=1),
    Setting("max_replacements", "integer", "10", "jobs replaced after dying or being held before their "
            "worker connected, or hanging, before giving up", minimum=0),
    Setting("python", "path", "the Python running BXRun", "Python of the workers"),
    Setting("local_directory", "path", "$TMPDIR, else /tmp", "where each worker makes its private scratch "
            "directory (mktemp -d, 0700) on the node"),
    Setting("dashboard", "text", "yes", "Dask's dashboard: yes (127.0.0.1, a free port), no, or "
            "HOST:PORT to listen there (read-only, no authentication)"),
)


def batch_section(name: str, own: tuple[Setting, ...], connect_timeout: int, help: str) -> SettingsSection:
    """The declaration of a batch backend's timerc section: its own keys first, then the
    keys every batch system shares (with the backend's connect_timeout)."""
    common = tuple(replace(s, default=s.default.format(connect_timeout=connect_timeout)) for s in COMMON_KEYS)
    return SettingsSection(name, own + common, help)


#: The worker's scratch directory: made by the job itself on its node, fresh, 0700, of an
#: unpredictable name (never a shared ``/tmp/dask-scratch-space`` another user may have made
#: first), removed when the job's shell ends.
SCRATCH_VARIABLE = "TIMECAL_SCRATCH"
DEFAULT_SCRATCH_BASE = "${TMPDIR:-/tmp}"
#: A scratch base goes into the job's shell: a path, $VARIABLES and ${VARIABLE:-default} only.
_SCRATCH_BASE = re.compile(r"[A-Za-z0-9_./{}:+$-]+")


# --------------------------------------------------------------------------- settings
@dataclass
class BatchSettings:
    """A timerc batch section, validated. ``cluster_kwargs`` become the dask-jobqueue
    cluster's arguments (see :func:`job_cluster_kwargs`); ``own`` keeps what only the
    backend uses (SLURM partition, HTCondor schedd...)."""

    section: str
    cluster_kwargs: dict
    jobs: int | None
    adapt: tuple[int, int] | None
    connect_timeout: float
    max_replacements: int
    scheduler_interface: str | None
    log_directory: Path
    own: dict = field(default_factory=dict)


def size_setting(section: str, settings: Mapping[str, str], key: str, default: str) -> str:
    """A size such as 2GB: timerc, else the user's jobqueue.yaml, else ``default``."""
    value = settings.get(key, "").strip() or dask.config.get(f"jobqueue.{section}.{key}", None) or default
    try:
        parse_bytes(value)
    except ValueError:
        raise UserError(f"timerc [{section}] {key} = {value!r}: expected a size such as 2GB or 1500MB") from None
    return value


def _check_interface(section: str, key: str, name: str | None, why: str = "") -> None:
    if name and name not in psutil.net_if_addrs():
        have = ", ".join(sorted(psutil.net_if_addrs()))
        raise UserError(f"timerc [{section}] {key} = {name!r}: no such network interface on this "
                        f"host{why}; it has: {have}")


def parse_batch_settings(declared: SettingsSection, raw: Mapping[str, str | None], output_dir: Path,
                         own_keys: tuple[Setting, ...], *,
                         log_directory: Path | None = None) -> tuple[BatchSettings, dict[str, str]]:
    """Validate the section against its declaration and parse the keys both batch systems
    share; return them and the backend's own values (``own_keys``). Keys the user leaves out
    are left to dask-jobqueue, which then reads the user's ``~/.config/dask/jobqueue.yaml``;
    only cores and memory, which it refuses to guess, get defaults. A wrong key or value is
    a one-line UserError naming it."""
    section = declared.name
    connect_timeout = int(declared.default("connect_timeout"))
    settings = {k: v for k, v in declared.check(raw).items() if v and k != "dashboard"}

    def positive(key: str) -> int | None:
        return positive_int_setting(section, settings, key)

    kwargs: dict = {}
    if settings.get("python", "").strip():
        kwargs["python"] = settings["python"].strip()
    cores = positive("cores") or dask.config.get(f"jobqueue.{section}.cores", None) or 1
    kwargs["cores"] = cores
    kwargs["processes"] = positive("processes") or dask.config.get(f"jobqueue.{section}.processes", None) or cores
    if kwargs["processes"] > cores:
        raise UserError(f"timerc [{section}] processes = {kwargs['processes']} exceeds cores = {cores}: "
                        f"each worker process needs at least one core")
    kwargs["memory"] = size_setting(section, settings, "memory", "2GB")
    prologue = setting_lines(settings.get("prologue", ""))
    kwargs["job_script_prologue"] = prologue + scratch_lines(section, settings.get("local_directory", ""))
    kwargs["local_directory"] = f"${SCRATCH_VARIABLE}"
    if settings.get("death_timeout", "").strip():
        kwargs["death_timeout"] = positive("death_timeout")

    interface = settings.get("interface", "").strip() or None
    scheduler_interface = settings.get("scheduler_interface", "").strip() or None
    contact = settings.get("contact_address", "").strip()
    # A fixed dashboard port collides between users of one login node: let the OS choose.
    scheduler_options: dict = {"dashboard_address": ":0"}
    if contact:
        host, sep, port = contact.split("://", 1)[-1].rpartition(":")
        if "://" not in contact or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"timerc [{section}] contact_address = {contact!r}: expected tls://HOST:PORT (the scheduler only speaks TLS)")
        scheduler_options["contact_address"] = contact
        # The workers are told HOST:PORT: the scheduler must listen on that port (a tunnel or
        # NAT forwards it), on every interface unless scheduler_interface says which.
        scheduler_options["port"] = int(port)
        if not scheduler_interface:
            scheduler_options["host"] = "0.0.0.0"
    _check_interface(section, "scheduler_interface", scheduler_interface)
    if scheduler_interface:
        scheduler_options["interface"] = scheduler_interface
    elif interface and not contact:
        # The workers' interface is the scheduler's too, then: it must exist here. Otherwise
        # it need not: the nodes' ib0 is often not on the login node.
        _check_interface(section, "interface", interface,
                         " (the scheduler listens on it too unless scheduler_interface or contact_address "
                         "is given)")
    if interface:
        kwargs["interface"] = interface
    kwargs["scheduler_options"] = scheduler_options

    log_directory = log_directory or output_dir / "logs"
    kwargs["log_directory"] = str(log_directory)

    jobs, adapt = size_setting_or_range(section, settings, "jobs")
    replacements = settings.get("max_replacements", "").strip()
    if replacements and not replacements.isdigit():
        raise UserError(f"timerc [{section}] max_replacements = {replacements!r}: expected an integer >= 0")
    shared = BatchSettings(section=section, cluster_kwargs=kwargs, jobs=jobs, adapt=adapt,
                           connect_timeout=float(positive("connect_timeout") or connect_timeout),
                           max_replacements=int(replacements or declared.default("max_replacements")),
                           scheduler_interface=scheduler_interface or interface,
                           log_directory=log_directory)
    own = {k: v for k, v in settings.items() if k in {s.key for s in own_keys}}
    return shared, own


def scratch_lines(section: str, base: str) -> list[str]:
    """The job's shell lines that make the worker's private scratch directory under ``base``
    (timerc ``local_directory``, else jobqueue.yaml's ``local-directory``, else ``$TMPDIR``
    or ``/tmp`` of the node) and remove it when the job ends. Backquotes, not ``$(...)``:
    HTCondor's submit language would take ``$(...)`` for one of its macros."""
    base = (base or "").strip() or dask.config.get(f"jobqueue.{section}.local-directory", None) \
        or DEFAULT_SCRATCH_BASE
    if not _SCRATCH_BASE.fullmatch(base):
        raise UserError(f"timerc [{section}] local_directory = {base!r}: expected a directory path "
                        f"(letters, digits, / . _ - and $VARIABLES), e.g. $TMPDIR or /scratch/$USER")
    return [f'{SCRATCH_VARIABLE}=`mktemp -d "{base}/timecal-dask-XXXXXXXX"` || exit 1',
            f"trap 'rm -rf \"${SCRATCH_VARIABLE}\"' EXIT"]
