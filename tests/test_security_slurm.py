"""``BXRun --dask slurm`` with TLS: a real SLURM job's worker connects with the credentials
the backend gave it, and nothing else does (the single-node SLURM cluster of tests/slurm/);
another user of the cluster sees the job but reads no credential and cannot connect."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import bxrun_path, write_timerc
from helpers.other_user import OTHER, as_other_user, attempt, other_gid, require_other_user, shared_dir  # noqa: F401
from slurm.fixture import slurm_cluster  # noqa: F401  (fixture)
from timecal_core.run.cluster_security import CREDENTIALS_DIR

pytestmark = pytest.mark.slurm

SLURM_SECTION = "[slurm]\npartition = debug\nmemory = 500MB\nwalltime = 00:10:00\njobs = 1\n"


def _slurm_worker() -> tuple[psutil.Process, str] | None:
    """The Dask worker started by a SLURM job, and its job id (from its environment)."""
    for proc in psutil.process_iter(["cmdline", "environ"]):
        cmd = proc.info["cmdline"] or []
        env = proc.info["environ"] or {}
        if "distributed.cli.dask_worker" in cmd and "SLURM_JOB_ID" in env:
            return proc, env["SLURM_JOB_ID"]
    return None


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _start_production(tmp_path: Path, monkeypatch, grid: str, slurm_lines: str = ""):
    """``BXRun --dask slurm`` on the sleeper grid, returned once a SLURM job's worker runs a
    task: (the BXRun process, the production directory, the worker process, its job id)."""
    monkeypatch.setenv("TIMECAL_CONFIG", str(write_timerc(tmp_path / "config", SLURM_SECTION + slurm_lines)))
    (tmp_path / "grid.yml").write_text(grid)
    out = tmp_path / "prod"
    production = subprocess.Popen([bxrun_path(), "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                                   "--dask", "slurm", "-o", str(out), "--interval", "1"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
    deadline = time.time() + 120
    while (found := _slurm_worker()) is None or not list((out / "results" / ".tmp").glob("*/task.log")):
        if production.poll() is not None or time.time() > deadline:
            production.kill()
            raise AssertionError(f"no SLURM worker ran a task within 120 s:\n{production.communicate()[0]}")
        time.sleep(0.5)
    return production, out, *found


def test_slurm_worker_joins_over_tls_with_files_only_the_owner_reads(slurm_cluster, tmp_path, monkeypatch):
    from distributed import Client
    from distributed.security import Security

    production, out, worker, job_id = _start_production(tmp_path, monkeypatch, "index: [1, 2, 3]\nseconds: 4\n")
    try:
        argv = worker.cmdline()
        scheduler = argv[argv.index("distributed.cli.dask_worker") + 1]
        assert scheduler.startswith("tls://")
        credentials = out / CREDENTIALS_DIR
        assert mode(credentials) == 0o700
        for option in ("--tls-key", "--tls-cert", "--tls-ca-file"):
            path = Path(argv[argv.index(option) + 1])
            assert path.parent == credentials and mode(path) == 0o600
        # What SLURM keeps of the job: the script names the files, it holds no key.
        script = subprocess.run(["scontrol", "write", "batch_script", job_id, "-"], capture_output=True,
                                text=True, check=True).stdout
        assert "--tls-key" in script and "PRIVATE KEY" not in script
        # The scheduler the compute node reached refuses a client without the production's key.
        for address, security in ((scheduler.replace("tls://", "tcp://"), None),
                                  (scheduler, Security.temporary())):
            with pytest.raises(OSError):
                Client(address, security=security, timeout="3s")
        output, _ = production.communicate(timeout=240)
    finally:
        if production.poll() is None:
            production.kill()
    assert production.returncode == 0, output
    assert "production complete: 3 tasks done" in output
    assert not list(credentials.iterdir()), "the worker key outlives the production"


# ----------------------------------------------------------------------------- another user (issue 23)
def _as_other(*argv: str) -> subprocess.CompletedProcess:
    """A command of the other user (SLURM's client commands need nothing but SLURM_CONF)."""
    return subprocess.run(["setpriv", f"--reuid={OTHER}", f"--regid={other_gid()}", "--clear-groups",
                           "env", f"SLURM_CONF={os.environ['SLURM_CONF']}", *argv],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_another_user_sees_a_slurm_production_but_reads_no_credential_and_cannot_connect(
        slurm_cluster, tmp_path, shared_dir, monkeypatch):
    """What another user of the cluster sees of a running production, tried as that user
    (``nobody``) on the real cluster: the job in ``squeue`` and ``scontrol show job`` (name,
    owner, work directory, log paths: SLURM shows every job to everyone unless the site sets
    PrivateData), and the worker's command line in /proc (scheduler address, the paths of
    the key files). Not the job script (``scontrol write batch_script`` is refused), not the
    job's environment, not the key (0600 in the 0700 ``.credentials``), and no connection to
    the scheduler. The worker's scratch directory is one ``mktemp -d`` made in the job, under
    a ``local_directory`` where the other user prepared a ``dask-scratch-space``: unused."""
    require_other_user()
    from test_security_isolation import _failed_for_want_of_credentials, run_attacker
    from test_security_trust import _prepare_scratch, snapshot

    target = tmp_path / "owner-only"
    target.mkdir(mode=0o755)
    as_other_user(_prepare_scratch, str(shared_dir), str(target))
    prepared = snapshot(shared_dir)
    production, out, worker, job_id = _start_production(tmp_path, monkeypatch, "index: [1, 2]\nseconds: 15\n",
                                                        f"local_directory = {shared_dir}\n")
    try:
        argv = worker.cmdline()
        scheduler = argv[argv.index("distributed.cli.dask_worker") + 1]
        key = argv[argv.index("--tls-key") + 1]
        scratch = Path(argv[argv.index("--local-directory") + 1])

        # What the other user sees: the job and its command line.
        assert job_id in _as_other("squeue", "--noheader", "--format=%i").stdout.split()
        shown = _as_other("scontrol", "show", "job", job_id)
        assert shown.returncode == 0 and "JobName=timecal" in shown.stdout and "UserId=root(0)" in shown.stdout
        assert "PRIVATE KEY" not in shown.stdout and "CERTIFICATE" not in shown.stdout
        seen = attempt(lambda: "--tls-key" in Path(f"/proc/{worker.pid}/cmdline").read_bytes().decode())
        assert seen == "ok: True", seen  # the paths of the key files, never the key
        # What the other user cannot read.
        script = _as_other("scontrol", "write", "batch_script", job_id, "-")  # exit code 0 all the same
        assert script.stdout == "" and "retrieval failed: Invalid user id" in script.stderr, \
            script.stdout + script.stderr
        assert attempt(lambda: Path(f"/proc/{worker.pid}/environ").read_bytes()).startswith("failed: PermissionError")
        assert attempt(lambda: Path(key).read_text()).startswith("failed: PermissionError")
        assert attempt(os.listdir, str(out / CREDENTIALS_DIR)).startswith("failed: PermissionError")
        # ... nor connect, over tcp:// or over tls:// with a certificate of its own.
        port = int(scheduler.rsplit(":", 1)[1])
        report = run_attacker(tmp_path, {"ports": [port]})
        outcomes = {m: r for methods in report["results"].values() for m, r in methods.items()}
        assert outcomes and all(_failed_for_want_of_credentials(r) for r in outcomes.values()), outcomes
        # The worker's scratch: made in the job, fresh and private; the prepared one unused.
        assert scratch.parent == shared_dir and scratch.name.startswith("timecal-dask-")
        st = os.lstat(scratch)
        assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
        output, _ = production.communicate(timeout=240)
    finally:
        if production.poll() is None:
            production.kill()
    assert production.returncode == 0, output
    assert snapshot(shared_dir) == prepared and list(target.iterdir()) == []
