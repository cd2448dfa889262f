"""Another user of an HTCondor pool and a production running in it (issue 23), on the real
single-node pool of tests/htcondor/: BXRun runs as the pool's submit user with the
production's own credentials (as on lxplus, where BXRun and its jobs share one account),
and ``nobody`` looks at it with the pool's own client (``condor_q``, run in the pool's chroot
under that user) and from the host."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from helpers.other_user import OTHER, attempt, require_other_user
from htcondor.fixture import CHROOT, condor_workdir, htcondor_pool, submit_uid  # noqa: F401
from test_htcondor_pool import bxrun, condor_job_of
from test_security_isolation import _failed_for_want_of_credentials, run_attacker
from timecal_core.run.cluster_security import CREDENTIALS_DIR

pytestmark = pytest.mark.htcondor


def _condor_worker() -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline", "uids"]):
        if "distributed.cli.dask_worker" in (proc.info["cmdline"] or []) and proc.info["uids"].real == submit_uid():
            return proc
    return None


def _condor_q_as_other(job: str) -> subprocess.CompletedProcess:
    """The pool's own condor_q, as the other user (its account in the pool's chroot)."""
    return subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "/usr/sbin/chroot",
                           f"--userspec={OTHER}:nogroup", str(CHROOT), "condor_q", "-allusers", "-l", job],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_another_user_sees_an_htcondor_production_but_reads_no_credential_and_cannot_connect(condor_workdir,
                                                                                            tmp_path):
    """``condor_q -l`` shows every job's ClassAd to everyone in the pool: the worker's whole
    command line (scheduler address, the paths of the key files) and its directories. The
    key itself (0600 in the production's 0700 ``.credentials``), the job's environment and a
    connection to the scheduler stay out of the other user's reach; the worker's scratch
    directory is a fresh 0700 one of the job's own in the job's scratch space."""
    require_other_user()
    grid = condor_workdir / "grid.yml"
    grid.write_text("index: [1, 2]\nseconds: 15\n")
    out = condor_workdir / "prod"
    production = bxrun(condor_workdir, "jobs = 1\n", "--script", "sleeper", "--yaml", grid, "--dask", "htcondor",
                       "-o", out, "--interval", "1", wait=False, own_credentials=True)
    try:
        deadline = time.time() + 180
        while (worker := _condor_worker()) is None or not list((out / "results" / ".tmp").glob("*/task.log")):
            assert production.poll() is None, production.communicate()[0]
            assert time.time() < deadline, "no HTCondor worker ran a task within 180 s"
            time.sleep(0.5)
        argv = worker.cmdline()
        scheduler = argv[argv.index("distributed.cli.dask_worker") + 1]
        key = Path(argv[argv.index("--tls-key") + 1])
        scratch = Path(argv[argv.index("--local-directory") + 1])
        job = condor_job_of(worker.pid)

        ad = _condor_q_as_other(job)
        assert ad.returncode == 0, ad.stdout + ad.stderr
        assert "--tls-key" in ad.stdout and str(key) in ad.stdout  # the path, for everyone to read
        assert "PRIVATE KEY" not in ad.stdout and "CERTIFICATE" not in ad.stdout
        assert key.parent == out / CREDENTIALS_DIR
        assert attempt(lambda: key.read_text()).startswith("failed: PermissionError")
        assert attempt(os.listdir, str(out / CREDENTIALS_DIR)).startswith("failed: PermissionError")
        assert attempt(lambda: Path(f"/proc/{worker.pid}/environ").read_bytes()).startswith("failed: PermissionError")
        port = int(scheduler.rsplit(":", 1)[1])
        report = run_attacker(tmp_path, {"ports": [port]})
        outcomes = {m: r for methods in report["results"].values() for m, r in methods.items()}
        assert outcomes and all(_failed_for_want_of_credentials(r) for r in outcomes.values()), outcomes
        assert scratch.name.startswith("timecal-dask-")
        st = os.lstat(Path(f"/proc/{worker.pid}/root") / str(scratch).lstrip("/"))  # in the pool's chroot
        assert st.st_uid == submit_uid() and stat.S_IMODE(st.st_mode) == 0o700
        output, _ = production.communicate(timeout=300)
    finally:
        if production.poll() is None:
            production.kill()
    assert production.returncode == 0, output
