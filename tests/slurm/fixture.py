"""The session's single-node SLURM cluster (start_slurm.sh / stop_slurm.sh beside this file).

Imported by the SLURM test modules (``from slurm.fixture import slurm_cluster``). The
cluster is real: Debian's slurmctld + slurmd + munge on localhost. It is started when a
test first needs it (``make test`` has usually started it already) and, if this session
started it, stopped at the end by PID. Only root can run it: elsewhere the tests skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BASE = Path(os.environ.get("TIMECAL_SLURM_BASE", "/tmp/timecal-slurm"))


def _controller_running() -> bool:
    try:
        pid = (BASE / "run" / "slurmctld.pid").read_text().strip()
        return Path(f"/proc/{pid}/comm").read_text().strip() == "slurmctld"
    except OSError:
        return False


@pytest.fixture(scope="session")
def slurm_cluster() -> Path:
    """Start (or reuse) the cluster and point the SLURM commands of this session (and of its
    subprocesses, jobs included) at its slurm.conf; returns its base directory."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (it installs and starts slurmctld/slurmd)")
    saved_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(BASE / "slurm.conf")
    started_here = not _controller_running()
    done = subprocess.run(["bash", str(HERE / "start_slurm.sh"), str(BASE)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"tests/slurm/start_slurm.sh failed:\n{done.stdout}\n{done.stderr}")
    yield BASE
    if started_here:
        subprocess.run(["bash", str(HERE / "stop_slurm.sh"), str(BASE)], capture_output=True, timeout=120)
    if saved_conf is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved_conf


def squeue_ids() -> set[str]:
    """Job ids SLURM currently has pending or running (an independent look, not the backend's)."""
    out = subprocess.run(["squeue", "--noheader", "--format=%i"], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())
