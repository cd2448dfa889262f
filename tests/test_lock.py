"""One driver per production, with real processes: a live holder blocks (host and PID
named), a holder killed with SIGKILL leaves a stale lock that is taken over with a notice."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from timecal_core.contract.errors import UserError
from timecal_core.run.lock import LOCK_NAME, ProductionLock

HOLDER = textwrap.dedent("""
    import sys, time
    from timecal_core.run.lock import ProductionLock
    with ProductionLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock of tmp_path/prod."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "prod")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_driver_is_refused_naming_host_and_pid(tmp_path, holder):
    with pytest.raises(UserError) as err:
        with ProductionLock(tmp_path / "prod"):
            pass
    message = str(err.value)
    assert f"PID {holder.pid}" in message and socket.gethostname() in message
    assert (tmp_path / "prod" / LOCK_NAME).exists()  # the holder's lock is untouched


def test_stale_lock_of_a_killed_driver_is_taken_over(tmp_path, holder, capsys):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with ProductionLock(tmp_path / "prod") as lock:
        assert f'"pid": {os.getpid()}' in lock.path.read_text()
    assert "taking over a stale lock" in capsys.readouterr().err
    assert not (tmp_path / "prod" / LOCK_NAME).exists()  # released on exit


def test_released_lock_can_be_taken_again(tmp_path):
    with ProductionLock(tmp_path):
        pass
    with ProductionLock(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()


def test_lock_from_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text('{"host": "elsewhere.example", "pid": 1, "since": %f}'
                                      % time.time())
    with pytest.raises(UserError, match=r"host elsewhere\.example, PID 1.*remove"):
        ProductionLock(tmp_path).acquire()


def test_release_does_not_remove_someone_elses_lock(tmp_path):
    lock = ProductionLock(tmp_path)
    lock.acquire()
    (tmp_path / LOCK_NAME).write_text('{"host": "h", "pid": 2, "since": 1}')  # replaced meanwhile
    lock.release()
    assert (tmp_path / LOCK_NAME).exists()


def test_holder_status_tells_live_from_stale(tmp_path, holder):
    assert f"running (host {socket.gethostname()}, PID {holder.pid}" in \
        ProductionLock(tmp_path / "prod").holder_status()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert "none running (stale lock" in ProductionLock(tmp_path / "prod").holder_status()
