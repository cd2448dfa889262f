"""Fixtures shared by the test suite: an isolated timerc, the BXRun command, the cmsRun
stand-in on PATH, and third-party plugin packages installed the way users install them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
BIN = Path(sys.executable).parent


def bxrun_path() -> str:
    return str(BIN / "BXRun")


def run_bxrun(*args, input: str | None = None, timeout: float = 120, cwd=None, env=None):
    """Run the installed BXRun console script; returns CompletedProcess (text)."""
    return subprocess.run([bxrun_path(), *map(str, args)], input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def listening_elsewhere() -> tuple[str, str]:
    """(an interface of this host other than loopback, a contact address on loopback with a
    free port): the scheduler then listens on that interface only, and the workers, told the
    loopback address, are refused: a contact address that does not lead to the scheduler."""
    name = next((n for n, addrs in psutil.net_if_addrs().items()
                 if n != "lo" and any(a.family == socket.AF_INET for a in addrs)), None)
    if name is None:
        pytest.skip("this host has no network interface besides loopback")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return name, f"tls://127.0.0.1:{s.getsockname()[1]}"


def results_of(out: Path) -> list[Path]:
    """The result directories of a production."""
    return sorted(p for p in (out / "results").iterdir() if p.is_dir() and not p.name.startswith("."))


def running_sleeper_pid(out: Path) -> int | None:
    """The pid of a sleeper task running in ``out`` (its task.log's first line), if any."""
    for log in (out / "results" / ".tmp").glob("*/task.log"):
        for line in log.read_text().splitlines():
            if line.startswith("sleeper pid="):
                return int(line.split()[1].split("=")[1])
    return None


def wait_until(condition, timeout: float, what: str):
    """``condition()``'s first true value, polled for at most ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ledger_states(prod: Path) -> dict:
    """task id -> (parameters, state, attempts), read-only from a production's ledger."""
    import json
    import sqlite3

    db = sqlite3.connect(f"file:{prod / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        return {tid: (json.loads(p), s, a) for tid, p, s, a in
                db.execute("SELECT task_id, params, state, attempts FROM tasks")}
    finally:
        db.close()


def write_timerc(directory: Path, extra: str = "", cmssw: Path | None = None, init: str = "") -> Path:
    data = directory / "data"
    for key in ("production", "scans", "calibration"):
        (data / key).mkdir(parents=True, exist_ok=True)
    cmssw = cmssw or directory / "cmssw"
    cmssw.mkdir(parents=True, exist_ok=True)
    path = directory / "timerc"
    path.write_text(
        f"[paths]\ncmssw = {cmssw}\nproduction = {data / 'production'}\nscans = {data / 'scans'}\n"
        f"calibration = {data / 'calibration'}\n\n[cmssw]\ninit = {init}\n\n[local]\nworkers = 2\n{extra}\n")
    return path


@pytest.fixture
def timerc(tmp_path, monkeypatch) -> Path:
    """A timerc of this test only, found through TIMECAL_CONFIG (inherited by subprocesses)."""
    path = write_timerc(tmp_path / "config")
    monkeypatch.setenv("TIMECAL_CONFIG", str(path))
    return path


@pytest.fixture
def cmsrun_standin(tmp_path, monkeypatch) -> Path:
    """Puts the cmsRun stand-in (tests/standins/cmsrun.py; CMSSW cannot be installed here)
    first on PATH. Returns its bin directory."""
    bindir = tmp_path / "standin-bin"
    bindir.mkdir()
    wrapper = bindir / "cmsRun"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TESTS / "standins" / "cmsrun.py"}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def pip_install_target(package_dir: Path, target: Path) -> None:
    """Install a plugin distribution into ``target`` (a site directory of its own)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(package_dir)], check=True, capture_output=True)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of a test that drives BXRun/timecal as a user would: a timerc of its
    own (production and scans under tmp_path, two local workers), its own history/state
    directory, and a terminal prompt_toolkit can drive without cursor-position queries."""
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 2\n")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state"),
            "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}


@pytest.fixture
def catch_gate(monkeypatch):
    """``catch_gate(gate)``: a fast path's gate (timecal_core.fastpath.FastPath) made undecided,
    what it says caught in the StringIO returned; undecided again after the test."""
    import io

    caught = []

    def catch(gate):
        said = io.StringIO()
        monkeypatch.setattr(gate, "stream", said)
        gate.reset()
        caught.append(gate)
        return said

    yield catch
    for gate in caught:
        gate.reset()


def fast_path_tested(gate) -> None:
    """Skip a test of a fast path on private API (timecal_core.fastpath.FastPath) when the
    installed release is outside the range it was tested with: there its gate keeps it off
    for users too (what ``make test-latest`` is for: the skip says which range to try and
    widen). The fallback itself is tested whatever the release."""
    if not gate.tested():
        import importlib

        version = getattr(importlib.import_module(gate.library), "__version__", "unknown")
        pytest.skip(f"{gate.library} {version} is outside the range {gate.what} was tested with "
                    f"({gate.oldest} to {gate.newest}): its gate keeps it off; test it and widen the range")


@pytest.fixture
def tmpfs_mount(tmp_path):
    """``mount(size)``: a real tmpfs of ``size`` (``2m``) mounted for this test, unmounted
    after it; the test is skipped with the reason where one cannot be mounted (not root)."""
    import shutil

    mounted: list[Path] = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        mnt = tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds (a ledger or file read mid-write may fail: retried),
    or fail the test naming ``what``."""
    import sqlite3
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except (sqlite3.Error, OSError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")
