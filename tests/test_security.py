"""timecal_core.run.cluster_security: the credentials every backend's cluster is started with.

Real clusters and real workers throughout: the batch backends' dask-jobqueue clusters are
built for real (their schedulers run here); SLURM itself is exercised by
tests/test_security_slurm.py. A worker is started from the exact command line of the SLURM
job script, as the job would, to show that the credentials it names suffice.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import dask
import pytest
from distributed import Client
from distributed.comm.utils import get_tcp_server_address
from distributed.security import Security

from conftest import run_bxrun
from timecal_core.run import cluster_security as sec
from timecal_core.contract.running_cluster import WORKER_FILE_PREFIX, RunningCluster
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest
from timecal_core.contract.plugins import get_registry

SLURM = {"cores": 1, "memory": "1GB", "processes": 1, "job_name": "timecal"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def slurm_cluster(out: Path, settings: dict | None = None):
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(**sec.jobqueue_kwargs("slurm", settings or {}, {**SLURM, "scheduler_options": {}}, out))


def worker_command(job_script: str) -> list[str]:
    line = next(ln for ln in job_script.splitlines() if "distributed.cli.dask_worker" in ln)
    return shlex.split(line)


def test_batch_worker_credentials_are_files_only_the_owner_reads(tmp_path):
    """dask-jobqueue writes the worker's certificate and key for the job; they land in
    <production>/.credentials (0700, files 0600), the job script only names them, and a
    worker started with that command line joins the TLS scheduler."""
    out = tmp_path / "prod"
    cluster = slurm_cluster(out)
    try:
        assert cluster.scheduler_address.startswith("tls://")
        assert cluster.security.require_encryption
        script = cluster.job_script()
        assert "PRIVATE KEY" not in script and "BEGIN CERTIFICATE" not in script
        argv = worker_command(script)
        named = {opt: Path(argv[argv.index(opt) + 1]) for opt in ("--tls-key", "--tls-cert", "--tls-ca-file")}
        credentials = out / sec.CREDENTIALS_DIR
        assert mode(credentials) == 0o700
        for path in named.values():
            assert path.parent == credentials and mode(path) == 0o600
        assert "PRIVATE KEY" in named["--tls-key"].read_text()
        # timecal wrote them (dask-jobqueue got file names and wrote nothing of its own)
        assert sorted(p.name for p in credentials.iterdir()) == sorted(p.name for p in named.values())
        assert all(p.name.startswith(WORKER_FILE_PREFIX) for p in named.values())
        assert sec.describe(cluster.security) == ("TLS, mutual authentication, self-signed certificate of this "
                                                  f"production (the batch workers' copy in {credentials})")
        assert RunningCluster(cluster, "slurm").dashboard_link.startswith("http://127.0.0.1:")

        worker = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            with Client(cluster, security=cluster.security, timeout="30s") as client:
                client.wait_for_workers(1, timeout=60)
                assert client.submit(os.getppid).result() == worker.pid  # ran under its nanny
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    finally:
        RunningCluster(cluster, "slurm").close()
    assert not list(credentials.iterdir()), "the key files outlive their cluster"


def test_a_worker_without_the_credentials_is_refused(tmp_path):
    """The same command line without the --tls-* options (or with another certificate)
    never joins: the scheduler accepts no one but holders of the production's key."""
    out = tmp_path / "prod"
    cluster = slurm_cluster(out)
    try:
        argv = worker_command(cluster.job_script())
        for opt in ("--tls-key", "--tls-cert", "--tls-ca-file"):
            i = argv.index(opt)
            del argv[i:i + 2]
        other = Security.temporary()
        for key, value in (("ca-file", other.tls_ca_file), ("cert", other.tls_worker_cert),
                           ("key", other.tls_worker_key)):
            path = tmp_path / f"other-{key}.pem"
            path.write_text(value)
            argv += [f"--tls-{key}", str(path)]
        argv += ["--death-timeout", "8"]
        worker = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert worker.returncode != 0
        assert not cluster.scheduler.workers
    finally:
        cluster.close()


def test_htcondor_cluster_gets_the_same_credentials(tmp_path):
    from dask_jobqueue import HTCondorCluster

    out = tmp_path / "prod"
    kwargs = sec.jobqueue_kwargs("htcondor", {"dashboard": "no"},
                                 {"cores": 1, "memory": "1GB", "disk": "1GB", "scheduler_options": {}}, out)
    cluster = HTCondorCluster(**kwargs)
    try:
        assert cluster.scheduler_address.startswith("tls://")
        script = cluster.job_script()
        assert "PRIVATE KEY" not in script
        keys = re.findall(r"--tls-key (\S+)", script)
        assert keys and all(Path(k.strip("'\"")).parent == out / sec.CREDENTIALS_DIR for k in keys)
        # dashboard = no: distributed still opens its HTTP port, on loopback, health check only
        host, port = get_tcp_server_address(cluster.scheduler.http_server)[:2]
        assert host == "127.0.0.1"
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
        for page in ("/status", "/json/identity.json", "/info/main/workers.html"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=5)
    finally:
        cluster.close()


def test_plain_tcp_contact_address_is_refused(tmp_path):
    with pytest.raises(UserError) as err:
        sec.jobqueue_kwargs("slurm", {}, {"scheduler_options": {"contact_address": "tcp://login1:8786"}}, tmp_path)
    assert str(err.value) == ("timerc [slurm] contact_address = 'tcp://login1:8786': the scheduler only speaks "
                              "TLS (docs/explanation/security.md); write tls://login1:8786")


@pytest.mark.parametrize("value, expected", [
    (None, "127.0.0.1:0"), ("yes", "127.0.0.1:0"), ("no", None), ("off", None),
    ("0.0.0.0:8787", "0.0.0.0:8787"), ("login1.example:0", "login1.example:0"),
])
def test_dashboard_setting(value, expected):
    settings = {} if value is None else {"dashboard": value}
    assert sec.dashboard_address("slurm", settings) == expected


@pytest.mark.parametrize("value", ["8787", "somewhere", "host:99999", ":"])
def test_bad_dashboard_setting(value):
    with pytest.raises(UserError, match=re.escape(f"timerc [slurm] dashboard = {value!r}: expected yes, no or HOST:PORT")):
        sec.dashboard_address("slurm", {"dashboard": value})


def test_batch_dashboard_where_the_user_says(tmp_path):
    cluster = slurm_cluster(tmp_path / "prod", {"dashboard": "127.0.0.1:0"})
    try:
        assert RunningCluster(cluster, "slurm").dashboard_link.startswith("http://127.0.0.1:")
    finally:
        cluster.close()


# ----------------------------------------------------------------------------- site CA
from helpers.site_ca import _site_config, _write_site_ca  # noqa: E402


def test_site_ca_from_dask_config_is_used(tmp_path, monkeypatch):
    files = _write_site_ca(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # paths under ~ work (ssl itself does not expand ~)
    config = {k: v.replace(str(tmp_path), "~") for k, v in _site_config(files).items()}
    with dask.config.set(config):
        security = sec.cluster_security()
        assert security.require_encryption and security.tls_ca_file == str(files["ca"])
        assert security.tls_worker_key == str(files["key"])
        assert "site CA" in sec.describe(security)
        running = get_registry().backend("local").item.start(
            BackendRequest({"workers": "1", "dashboard": "no"}, tmp_path))
        try:
            with Client(running.cluster, security=running.security) as client:
                assert client.submit(sum, [2, 3]).result() == 5
            with pytest.raises(OSError):  # a self-signed certificate is not the site's
                Client(running.cluster.scheduler_address, security=Security.temporary(), timeout="3s")
        finally:
            running.close()


def test_site_ca_batch_jobs_name_the_site_files(tmp_path):
    """With site certificates nothing is copied: the job uses the user's own files."""
    files = _write_site_ca(tmp_path)
    out = tmp_path / "prod"
    with dask.config.set(_site_config(files)):
        cluster = slurm_cluster(out)
    try:
        argv = worker_command(cluster.job_script())
        assert argv[argv.index("--tls-key") + 1] == str(files["key"])
        assert argv[argv.index("--tls-ca-file") + 1] == str(files["ca"])
        assert not (out / sec.CREDENTIALS_DIR).exists()
    finally:
        cluster.close()


def test_site_key_readable_by_others_is_refused(tmp_path):
    files = _write_site_ca(tmp_path)
    files["key"].chmod(0o644)
    with dask.config.set(_site_config(files)), pytest.raises(UserError) as err:
        sec.cluster_security()
    assert "scheduler.key" in str(err.value) and "readable by others (mode 0644)" in str(err.value)
    assert f"chmod 600 {files['key']}" in str(err.value)


def test_half_configured_site_ca_is_an_error(tmp_path):
    files = _write_site_ca(tmp_path)
    with dask.config.set({"distributed.comm.tls.ca-file": str(files["ca"])}), pytest.raises(UserError) as err:
        sec.cluster_security()
    assert "scheduler.cert, worker.cert, client.cert not set" in str(err.value)


def test_without_site_ca_each_cluster_gets_its_own_certificate():
    a, b = sec.cluster_security(), sec.cluster_security()
    assert a.require_encryption and sec.in_memory(a)
    assert a.tls_worker_key != b.tls_worker_key
    assert "self-signed" in sec.describe(a)
    assert sec.describe(None).startswith("none")


def test_private_directory_tightens_an_existing_one_of_the_user(tmp_path):
    from timecal_core.contract.trust import private_dir

    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    assert mode(private_dir(loose)) == 0o700
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700


# ----------------------------------------------------------------------------- files
def test_production_files_never_more_open_than_the_umask(tmp_path, timerc):
    """With umask 077 nothing the production creates (directory, ledger, logs, results,
    lock) is readable, writable or enterable by anyone but its owner."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2]\nmessage: hello\n")
    out = tmp_path / "prod"
    res = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", sys.executable, "-m", "timecal_core.cli.bxrun",
                          "--script", "sleeper", "--yaml", str(grid), "--dask", "local", "-o", str(out)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    created = [out, *out.rglob("*")]
    assert any(p.name == "driver.log" for p in created) and any(p.suffix == ".sqlite" or "ledger" in p.name
                                                                for p in created)
    open_to_others = {str(p.relative_to(out)): f"{mode(p):04o}" for p in created if mode(p) & 0o077}
    assert not open_to_others


def test_bxrun_prints_no_key(tmp_path, timerc):
    """Credentials never reach the terminal, the ledger or the logs."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1]\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", grid, "--dask", "local", "-o", out, input="")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PRIVATE KEY" not in res.stdout + res.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_closing_a_cluster_never_deletes_a_sites_certificates(tmp_path):
    """With a site CA (files the user keeps), the cluster's close removes nothing: only the
    files timecal wrote for batch jobs go."""
    from timecal_core.contract.running_cluster import forget_worker_credentials

    pem = Security.temporary().get_tls_config_for_role("worker")
    files = {}
    for kind in ("ca_file", "cert", "key"):
        files[kind] = tmp_path / f"site-{kind}.pem"
        files[kind].write_text(pem[kind])
    site = Security(require_encryption=True, tls_ca_file=str(files["ca_file"]), tls_worker_cert=str(files["cert"]),
                    tls_worker_key=str(files["key"]))

    class Closed:
        security = site

    forget_worker_credentials(Closed())
    assert all(path.is_file() for path in files.values())
    assert sec.describe(site) == f"TLS, mutual authentication, site CA {files['ca_file']}"
