"""One way to fail, for every command: user errors are one line and exit 2, the disk
saying no is one line naming the file, a bug says it is one and where its traceback went,
-v shows tracebacks, a closed pipe is quiet. Through the real console scripts where the
case can be made real, through ``run_cli`` itself where it cannot (a bug on demand)."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from timecal_core.contract.errors import UserError
from timecal_core.cli.command_errors import EXIT_BUG, EXIT_PIPE, EXIT_USER, run_cli

BIN = Path(sys.executable).parent


def run(prog, *args, env=None, **kw):
    return subprocess.run([str(BIN / prog), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL, **kw)


@pytest.fixture
def env(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"calibration = {tmp_path / 'calib'}\n")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}


@pytest.mark.parametrize("prog,args", [
    ("BXRun", ("--status", "-o", "no-such-production")),
    ("plotScan", ("-i", "no-such-production")),
    ("runCalibration", ("no-such-file.yml",)),
])
def test_a_user_error_is_one_line_and_exit_2_and_v_shows_the_traceback(prog, args, env):
    out = run(prog, *args, env=env)
    assert out.returncode == EXIT_USER, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), out.stderr
    verbose = run(prog, *args, "-v", env=env)
    assert verbose.returncode == EXIT_USER
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith(f"{prog}: error: ")


def test_a_closed_pipe_is_not_a_traceback(tmp_path, env):
    """``BXRun --status -o X | head -1`` on a production with a long status."""
    from timecal_core.ledger.sqlite_ledger import Ledger

    prod = tmp_path / "prod" / "big"
    ledger = Ledger.create(prod)
    for i in range(2000):
        ledger.note(f"event {i} " + "x" * 200)
    ledger.close()
    script = f"'{BIN / 'BXRun'}' --status -o big | head -1; echo \"status=${{PIPESTATUS[0]}}\""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.startswith("production ")
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    assert f"status={EXIT_PIPE}" in out.stdout or "status=0" in out.stdout


def test_a_bug_says_so_and_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def broken():
        raise KeyError("no such thing")

    assert run_cli("BXRun", broken) == EXIT_BUG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error (a bug" in err[0] and "KeyError" in err[0]
    (saved,) = (tmp_path / "state" / "timecal" / "crashes").iterdir()
    assert "Traceback" in saved.read_text() and str(saved) in err[0]
    assert run_cli("BXRun", broken, verbose=True) == EXIT_BUG
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize("code,expected", [
    (errno.ENOSPC, "no space left on"), (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied")])
def test_the_disk_saying_no_is_one_line_naming_the_file(code, expected, capsys):
    def write():
        raise OSError(code, os.strerror(code), "/data/prod/results/x/params.json")

    assert run_cli("BXRun", write) == EXIT_USER
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "/data/prod/results/x/params.json" in err[0]


def test_a_user_error_keeps_its_own_exit_code(capsys):
    def refuse():
        raise UserError("threshold: -5 is not allowed (>= 0)")

    assert run_cli("plotScan", refuse) == EXIT_USER
    assert capsys.readouterr().err == "plotScan: error: threshold: -5 is not allowed (>= 0)\n"


def test_a_ledger_filling_its_disk_is_the_one_line_naming_the_device(tmpfs_mount, capsys):
    """SQLite says "database or disk is full" and names no file: the ledger puts its path on
    the error, and the command's one line names the file system and the ledger, as for any
    other file the disk refused (a real tmpfs filled by real ledger writes)."""
    from timecal_core.ledger.sqlite_ledger import Ledger

    disk = tmpfs_mount("256k")
    ledger = Ledger.create(disk)

    def fill():
        for i in range(100_000):
            ledger.note("x" * 4000 + str(i))

    assert run_cli("BXRun", fill) == EXIT_USER
    err = capsys.readouterr().err
    assert f"no space left on tmpfs ({disk}) writing {disk / 'ledger.sqlite'}" in err, err
    assert "nothing done is lost" in err and len(err.strip().splitlines()) == 1, err
