"""Another user of the machine (``nobody``), for the tests of what another user of a shared
login node can reach or prepare in advance.

Only root can switch users: those tests skip elsewhere, saying so. Short actions (make a
directory, plant a symlink, try to read a file) run in a forked child that drops to the
other user first (:func:`as_other_user`); long-lived ones (a fake driver) are processes
started as root that become that user before doing anything (:func:`fake_driver`).
"""

from __future__ import annotations

import os
import pickle
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

OTHER = "nobody"


def require_other_user() -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root: the test switches to another user ({OTHER}) who prepares the traps")
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        pytest.skip(f"no user {OTHER!r} on this machine to play the other user")


def other_uid() -> int:
    return pwd.getpwnam(OTHER).pw_uid


def other_gid() -> int:
    return pwd.getpwnam(OTHER).pw_gid


def _drop() -> None:
    user = pwd.getpwnam(OTHER)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def as_other_user(function, *args):
    """``function(*args)`` run as the other user in a forked child; returns what it returned
    (picklable). An exception in it fails the calling test with its text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            _drop()
            payload = ("ok", function(*args))
        except BaseException as exc:  # noqa: BLE001  (reported to the parent)
            payload = ("error", f"{type(exc).__name__}: {exc}")
        try:
            with os.fdopen(write, "wb") as fh:
                pickle.dump(payload, fh)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "error":
        raise AssertionError(f"as {OTHER}: {value}")
    return value


def fake_driver(socket_path: Path, log: Path) -> subprocess.Popen:
    """The other user's fake driver (tests/helpers/fake_driver.py) on ``socket_path``,
    writing what reaches it to ``log``; returns once it listens."""
    here = Path(__file__).resolve().parent
    fake = subprocess.Popen([sys.executable, str(here / "fake_driver.py"), str(socket_path), str(log), OTHER],
                            stdout=subprocess.PIPE, text=True, cwd="/")
    if not fake.stdout.readline().startswith("ready"):
        fake.kill()
        raise AssertionError("the fake driver did not start")
    return fake


def attempt(function, *args) -> str:
    """``function(*args)`` as the other user: ``"ok: ..."`` or ``"failed: Error: ..."``."""
    def run():
        try:
            return f"ok: {function(*args)!r}"[:300]
        except OSError as exc:
            return f"failed: {type(exc).__name__}: {exc}"[:300]
    return as_other_user(run)


@pytest.fixture
def shared_dir():
    """A directory both users may write, like /tmp: world-writable with the sticky bit
    (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="timecal-shared-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
