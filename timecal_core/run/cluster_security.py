"""Only the owner of a production may talk to its Dask cluster.

Dask's ``tcp://`` transport has no authentication: anyone who can reach the scheduler (on
a login node shared by hundreds of users, 127.0.0.1 is everyone's) can connect a client and
run code as the owner with ``client.run``; a worker or nanny port accepts the same. Every
backend therefore starts its cluster with a :class:`distributed.security.Security` that
requires TLS with mutual authentication: a peer is accepted only if it presents a
certificate signed by the production's CA, whose key only the owner holds.

Where the credentials come from:

- **the user's Dask configuration**, when it names a site CA
  (``distributed.comm.tls.ca-file`` with the scheduler, worker and client certificates),
  for sites that issue certificates;
- otherwise **a fresh self-signed certificate per cluster** (``Security.temporary()``),
  kept in memory. Workers of a local cluster receive it through the pipe that starts them;
  workers in batch jobs cannot, so dask-jobqueue writes the worker's copy to
  ``<production>/.credentials`` (files 0600 in a 0700 directory, on the shared filesystem
  the jobs already write their results to) and the job script names those files, never
  their contents. The files are removed when the cluster object goes away.

Either way ``require_encryption`` is on, so nothing falls back to plain TCP.

Dask's processes also keep files: each scheduler, nanny and worker makes a work directory
under ``dask-scratch-space`` in ``$TMPDIR`` unless told otherwise, and follows whatever
another user put there first (``global.lock``, ``purge.lock`` as symlinks). The scheduler
and local workers therefore use ``<production>/.dask`` (0700, checked:
:func:`scratch_directory`); batch workers make a fresh private directory on their node
(:func:`timecal_core.batch.scratch_lines`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..contract.errors import UserError
from ..contract.trust import check_secret_file, private_dir

#: Directory of a production (or plotScan output) where batch workers find their credentials.
CREDENTIALS_DIR = ".credentials"
#: Directory of a production (or plotScan output) where its scheduler and local workers keep
#: their scratch space.
SCRATCH_DIR = ".dask"
#: Where the dashboard of a batch backend listens unless timerc says otherwise: loopback, a
#: free port (reach it through an SSH tunnel, docs/explanation/security.md).
DEFAULT_DASHBOARD = "127.0.0.1:0"
_OFF = ("no", "false", "off", "0", "none")
_ON = ("yes", "true", "on", "1", "")
_TLS_CONFIG = "distributed.comm.tls"
#: The scheduler's HTTP routes when the dashboard is off: distributed opens the port anyway.
HEALTH_ONLY = {"distributed.scheduler.http.routes": ["distributed.http.health"]}
_ROLES = ("scheduler", "worker", "client")


def cluster_security():
    """The credentials of one cluster: the site's from Dask's configuration, else a new
    self-signed pair. A half-configured site set-up is a UserError rather than a silent
    fallback, so that a user who meant to use the site CA learns it is not used."""
    import dask
    from distributed.security import Security

    ca_file = dask.config.get(f"{_TLS_CONFIG}.ca-file", None)
    certs = {role: dask.config.get(f"{_TLS_CONFIG}.{role}.cert", None) for role in _ROLES}
    if not ca_file and not any(certs.values()):
        return Security.temporary()
    missing = ([] if ca_file else ["ca-file"]) + [f"{r}.cert" for r, c in certs.items() if not c]
    if missing:
        raise UserError(f"dask config {_TLS_CONFIG}: {', '.join(missing)} not set; give ca-file and the "
                        f"scheduler, worker and client certificates (site CA), or none of them "
                        f"(timecal then makes a self-signed certificate for each production)")
    # Absolute paths: ssl does not expand ~, and batch jobs get them on their command line.
    files = {"tls_ca_file": _check_file("ca-file", ca_file)}
    for role, cert in certs.items():
        key = dask.config.get(f"{_TLS_CONFIG}.{role}.key", None)
        files[f"tls_{role}_cert"] = _check_file(f"{role}.cert", cert)
        if key:
            files[f"tls_{role}_key"] = _check_private(f"{role}.key", key)
        else:
            _check_private(f"{role}.cert (holding the key)", cert)
    return Security(require_encryption=True, **files)


def _check_file(key: str, path: str) -> str:
    """The file's absolute path; UserError if it does not exist."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise UserError(f"dask config {_TLS_CONFIG}.{key} = {path!r}: no such file")
    return full


def _check_private(key: str, path: str) -> str:
    """A private key others can read authenticates them as the user: refuse it, as ssh does."""
    return str(check_secret_file(_check_file(key, path), f"dask config {_TLS_CONFIG}.{key}"))


def scratch_directory(output_dir: Path) -> Path:
    """``<output>/.dask``: the scratch space of the production's scheduler and local
    workers, a 0700 directory of the user's (checked, created if absent)."""
    return private_dir(Path(output_dir) / SCRATCH_DIR)


def scratch_config(output_dir: Path) -> dict:
    """Dask configuration for processes started now (a scheduler, local workers): their
    ``dask-scratch-space`` in :func:`scratch_directory`, never in a shared ``$TMPDIR``."""
    return {"temporary-directory": str(scratch_directory(output_dir))}


def dashboard_address(section: str, settings: Mapping[str, str]) -> str | None:
    """timerc ``[<batch backend>] dashboard``: ``yes`` (default: 127.0.0.1, a free port),
    ``no``, or where to listen, ``HOST:PORT`` (the dashboard has no authentication: anyone
    who reaches that address sees task names, parameters, logs)."""
    value = (settings.get("dashboard") or "").strip()
    if value.lower() in _ON:
        return DEFAULT_DASHBOARD
    if value.lower() in _OFF:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UserError(f"timerc [{section}] dashboard = {value!r}: expected yes, no or HOST:PORT "
                        f"(e.g. 127.0.0.1:8787; port 0 = any free port)")
    return value


def without_dashboard(settings: Mapping[str, str]) -> dict[str, str]:
    """A backend's settings without the ``dashboard`` key, which :func:`jobqueue_kwargs`
    handles for every batch backend."""
    return {k: v for k, v in settings.items() if k != "dashboard"}


def jobqueue_kwargs(section: str, settings: Mapping[str, str], cluster_kwargs: Mapping,
                    production_dir: Path) -> dict:
    """dask-jobqueue cluster arguments with TLS and the dashboard where timerc says.

    ``cluster_kwargs`` are the backend's own (its ``scheduler_options`` are kept, only the
    dashboard entries are replaced). dask-jobqueue passes ``security`` to its scheduler and
    puts the worker's certificate options on the job's command line; in-memory credentials
    are first written to ``shared_temp_directory``, here a 0700 directory of the production.
    """
    security = cluster_security()
    address = dashboard_address(section, settings)
    kwargs = dict(cluster_kwargs)
    scheduler_options = dict(kwargs.get("scheduler_options") or {})
    contact = scheduler_options.get("contact_address") or ""
    if contact and not contact.startswith("tls://"):
        raise UserError(f"timerc [{section}] contact_address = {contact!r}: the scheduler only speaks TLS "
                        f"(docs/explanation/security.md); write tls://{contact.split('://', 1)[-1]}")
    scheduler_options.update(dashboard=address is not None,
                             dashboard_address=address or DEFAULT_DASHBOARD)
    kwargs.update(security=security, protocol="tls://", scheduler_options=scheduler_options)
    if address is None:
        kwargs["scheduler_cls"] = health_only_scheduler()
    if in_memory(security):
        kwargs["shared_temp_directory"] = str(private_dir(Path(production_dir) / CREDENTIALS_DIR))
    return kwargs


def health_only_scheduler():
    """A scheduler whose HTTP port serves the health check only: with the dashboard off, no
    page listing tasks, workers or logs either (distributed reads the routes from its config
    while the scheduler starts)."""
    import dask
    from distributed import Scheduler

    class HealthOnlyScheduler(Scheduler):
        def __init__(self, *args, **kwargs):
            with dask.config.set(HEALTH_ONLY):
                super().__init__(*args, **kwargs)

    return HealthOnlyScheduler


def in_memory(security) -> bool:
    """Whether the credentials exist only in this process (``Security.temporary()``)."""
    return any("\n" in (getattr(security, slot, None) or "") for slot in
               ("tls_ca_file", "tls_worker_cert", "tls_worker_key"))


def describe(security) -> str:
    """One line for the monitor's ``client`` command."""
    if security is None or not getattr(security, "require_encryption", False):
        return "none: plain TCP, anyone who reaches the scheduler can run code as you"
    if in_memory(security):
        return "TLS, mutual authentication, self-signed certificate of this production (in memory)"
    return f"TLS, mutual authentication, site CA {security.tls_ca_file}"
