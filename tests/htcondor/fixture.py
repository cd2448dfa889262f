"""The session's single-node HTCondor pool (start_htcondor.sh / stop_htcondor.sh beside this
file): Debian 13's HTCondor 23.9 in a chroot, on 127.0.0.1.

Imported by the HTCondor test modules (``from htcondor.fixture import htcondor_pool``). The
pool is real: collector, negotiator, schedd and startd run the workers' jobs. It is started
when a test first needs it (``make test`` has usually started it already) and, if this
session started it, stopped at the end. Only root can run it: elsewhere the tests skip.

Jobs run as the pool's submit user, not root, as on a real cluster where BXRun and its jobs
share one account: the tests therefore give their productions a directory that user may
write (``condor_workdir``) and run BXRun with umask 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHROOT = Path(os.environ.get("TIMECAL_HTCONDOR_CHROOT", "/var/cache/timecal/htcondor-chroot"))
BASE = Path(os.environ.get("TIMECAL_HTCONDOR_BASE", "/tmp/timecal-htcondor"))


def _pool_running() -> bool:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == "condor_master" and \
                    os.readlink(proc / "root") == str(CHROOT):
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="session")
def htcondor_pool() -> Path:
    """Start (or reuse) the pool; put its client commands first on PATH and point the Python
    bindings at it (this process and its subprocesses). Returns the host-side directory."""
    if os.geteuid() != 0:
        pytest.skip("the HTCondor test pool needs root (it builds a Debian 13 chroot and starts "
                    "condor_master in it; see tests/htcondor/start_htcondor.sh)")
    started_here = not _pool_running()
    done = subprocess.run(["bash", str(HERE / "start_htcondor.sh"), str(CHROOT)],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"tests/htcondor/start_htcondor.sh failed:\n{done.stdout}\n{done.stderr}")
    saved = {k: os.environ.get(k) for k in ("PATH", "CONDOR_CONFIG")}
    os.environ["PATH"] = f"{BASE / 'bin'}{os.pathsep}{os.environ['PATH']}"
    os.environ["CONDOR_CONFIG"] = str(BASE / "condor_config.host")
    import htcondor2

    htcondor2.reload_config()  # the bindings read CONDOR_CONFIG when first imported
    yield BASE
    if started_here:
        subprocess.run(["bash", str(HERE / "stop_htcondor.sh"), str(CHROOT)], capture_output=True, timeout=180)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    htcondor2.reload_config()


@pytest.fixture
def condor_workdir(htcondor_pool) -> Path:
    """A directory the pool's jobs may write (pytest's tmp_path is private to root)."""
    path = htcondor_pool / "work" / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    for p in (path.parent, path):
        p.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


SUBMIT_USER = os.environ.get("TIMECAL_HTCONDOR_USER", "tester")


def submit_uid() -> int:
    """The uid the pool's jobs run as (the submit user of the chroot)."""
    for line in (CHROOT / "etc" / "passwd").read_text().splitlines():
        name, _, uid, *_ = line.split(":")
        if name == SUBMIT_USER:
            return int(uid)
    raise RuntimeError(f"no user {SUBMIT_USER} in {CHROOT}/etc/passwd")


@pytest.fixture(scope="session")
def condor_site_ca(htcondor_pool) -> dict[str, str]:
    """TLS credentials for the pool's tests, as a site CA would issue them, owned by the
    submit user (key 0600). In this test pool the jobs run as another account than BXRun
    (root may not submit), so a production's own private credentials (0600 files of root in
    a 0700 directory) are out of their reach, as they should be; on a real pool BXRun and its
    jobs share one account (test_emulator_grid_runs_in_htcondor_jobs runs it so). Returned
    as Dask configuration environment variables."""
    from helpers.site_ca import _site_config, _write_site_ca

    folder = htcondor_pool / "site-ca"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    files = _write_site_ca(folder)
    for path in files.values():
        os.chown(path, submit_uid(), submit_uid())
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): value
            for key, value in _site_config(files).items()}


def as_submit_user(argv: list[str]) -> list[str]:
    """``argv`` run under the submit user's uid, as on a real pool where BXRun and its jobs
    share one account. It keeps the capabilities the test pool's host-side client commands
    need (chroot into the pool as that user) and to reach this checkout's interpreter."""
    caps = "+sys_chroot,+setuid,+setgid,+dac_read_search"
    uid = str(submit_uid())
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", f"--inh-caps={caps}",
            f"--ambient-caps={caps}", *argv]


def condor(*args: str) -> str:
    """A client command of the pool (the host-side wrapper), its stdout."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def queued_ids() -> set[str]:
    """Jobs the schedd has in its queue (an independent look, not the backend's)."""
    return {line.split("#")[1] for line in condor("condor_q", "-allusers", "-af", "GlobalJobId").split()}
