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
  workers in batch jobs cannot, so timecal writes the worker's copy (certificate, key, CA)
  to ``<production>/.credentials`` (files 0600 in a 0700 directory, on the shared filesystem
  the jobs already write their results to) and the job script names those files, never
  their contents. The files are removed when the cluster is closed.

Only distributed's public API is used: the ``Security`` constructor and
``get_tls_config_for_role``; dask-jobqueue gets file names, so it writes nothing itself.

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
from typing import TYPE_CHECKING

from ..contract.errors import UserError
from ..contract.running_cluster import WORKER_FILE_PREFIX
from ..contract.trust import check_secret_file, private_dir

if TYPE_CHECKING:
    from distributed.security import Security

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
    puts the worker's certificate options on the job's command line; self-signed credentials
    (in memory) are first written to files of a 0700 directory of the production
    (:func:`with_worker_files`).
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
    if in_memory(security):
        security = with_worker_files(security, private_dir(Path(production_dir) / CREDENTIALS_DIR))
    kwargs.update(security=security, protocol="tls://", scheduler_options=scheduler_options)
    if address is None:
        kwargs["scheduler_cls"] = health_only_scheduler()
    return kwargs


def with_worker_files(security: Security, directory: Path) -> Security:
    """``security`` (self-signed, in memory) with the CA and the worker's certificate and key
    in new files of ``directory``, readable by the owner only (batch jobs get their names on
    the command line); the scheduler's and the client's stay in memory. The cluster's close
    removes the files (:func:`~timecal_core.contract.running_cluster.forget_worker_credentials`)."""
    import tempfile

    from distributed.security import Security

    def write(kind: str, text: str) -> str:
        fd, path = tempfile.mkstemp(prefix=f"{WORKER_FILE_PREFIX}{kind}.", suffix=".pem", dir=directory)  # 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return path

    worker, scheduler, client = (security.get_tls_config_for_role(role) for role in ("worker", "scheduler", "client"))
    return Security(require_encryption=True, tls_ca_file=write("ca", worker["ca_file"]),
                    tls_worker_cert=write("cert", worker["cert"]), tls_worker_key=write("key", worker["key"]),
                    tls_scheduler_cert=scheduler["cert"], tls_scheduler_key=scheduler["key"],
                    tls_client_cert=client["cert"], tls_client_key=client["key"])


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


def in_memory(security: Security) -> bool:
    """Whether the credentials exist only in this process (``Security.temporary()``): PEM
    text rather than file names."""
    return any("\n" in (value or "") for value in _worker_tls(security))


def _worker_tls(security: Security) -> tuple[str, ...]:
    config = security.get_tls_config_for_role("worker")
    return tuple(v for v in (config.get("ca_file"), config.get("cert"), config.get("key")) if isinstance(v, str))


def describe(security: Security | None) -> str:
    """One line for the monitor's ``client`` command."""
    if security is None or not getattr(security, "require_encryption", False):
        return "none: plain TCP, anyone who reaches the scheduler can run code as you"
    if in_memory(security):
        return "TLS, mutual authentication, self-signed certificate of this production (in memory)"
    ca_file = security.get_tls_config_for_role("client")["ca_file"]
    if os.path.basename(ca_file).startswith(WORKER_FILE_PREFIX):
        return (f"TLS, mutual authentication, self-signed certificate of this production (the batch "
                f"workers' copy in {os.path.dirname(ca_file)})")
    return f"TLS, mutual authentication, site CA {ca_file}"
