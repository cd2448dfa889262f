"""``BXRun --dask slurm`` with TLS: a real SLURM job's worker connects with the credentials
the backend gave it, and nothing else does (the single-node SLURM cluster of tests/slurm/)."""

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


def test_slurm_worker_joins_over_tls_with_files_only_the_owner_reads(slurm_cluster, tmp_path, monkeypatch):
    from distributed import Client
    from distributed.security import Security

    monkeypatch.setenv("TIMECAL_CONFIG", str(write_timerc(tmp_path / "config", SLURM_SECTION)))
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3]\nseconds: 4\n")
    out = tmp_path / "prod"
    production = subprocess.Popen([bxrun_path(), "--script", "sleeper", "--yaml", str(grid), "--dask", "slurm",
                                   "-o", str(out), "--interval", "1"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
    try:
        deadline = time.time() + 120
        while (found := _slurm_worker()) is None or not list((out / "results" / ".tmp").glob("*/task.log")):
            assert production.poll() is None, production.communicate()[0]
            assert time.time() < deadline, "no SLURM worker ran a task within 120 s"
            time.sleep(0.5)
        worker, job_id = found
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
