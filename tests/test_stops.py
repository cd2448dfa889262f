"""Clean stops of a real driver: SIGTERM and SIGHUP to the driver stop it like the
monitor's ``exit`` (one message, the ledger says why, the lock is released, the next run
resumes); the monitor's terminal going away leaves the driver running; ``exit()`` in the
debug console returns to the monitor; ``scale`` down hands a busy worker's task back
without costing it an attempt. Real BXRun processes, real signals,
the monitor in a real pseudo-terminal."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

BXRUN = str(Path(sys.executable).with_name("BXRun"))
PROMPT = r"timecal \d+/\d+>"


def rows(prod):
    db = sqlite3.connect(f"file:{prod / 'ledger.sqlite'}?mode=ro", uri=True)
    return dict(db.execute("SELECT task_id, state FROM tasks")), \
        [d for (d,) in db.execute("SELECT detail FROM events WHERE task_id IS NULL")], \
        dict(db.execute("SELECT task_id, attempts FROM tasks"))


def wait_running(prod, n=1, timeout=60):
    """Until n steps have started (their log says so: the ledger only learns it at the next
    monitor interval)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        started = [log for log in (prod / "results" / ".tmp").glob("*/task.log")
                   if "sleeper pid=" in log.read_text(errors="replace")]
        if len(started) >= n:
            return
        time.sleep(0.2)
    pytest.fail("tasks never started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_the_driver_cleanly_and_the_rerun_resumes(tmp_path, env, sig):
    (tmp_path / "grid.yml").write_text("seconds: [0, 8]\n")
    args = [BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "sig",
            "--interval", "1"]
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    prod = tmp_path / "prod" / "sig"
    try:
        wait_running(prod)
        time.sleep(1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, out + err
    # what the rerun will run is named (issue 22: "1 task left to run (1 pending)")
    assert re.search(rf"signal {sig.name}; \d+ tasks? left to run \([^)]*\): rerun the same command to resume",
                     out), out
    assert "Traceback" not in out + err
    states, notes, _ = rows(prod)
    assert sorted(states.values()) == ["done", "pending"]
    assert f"driver stopped: signal {sig.name}" in notes
    assert not (prod / ".bxrun.lock").exists()
    again = subprocess.run([BXRUN, "--script", "sleeper", "-o", "sig", "--interval", "1"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert "production complete: 2 tasks done" in again.stdout, again.stdout + again.stderr


def spawn(env, tmp_path, grid, *extra):
    (tmp_path / "grid.yml").write_text(grid)
    return pexpect.spawn(BXRUN, ["--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                                 "-o", "mon", *extra], env=env, encoding="utf-8",
                         dimensions=(50, 220), timeout=60, cwd=str(tmp_path))


def test_the_terminal_going_away_leaves_the_driver_running(tmp_path, env):
    """SIGHUP to BXRun's monitor (an SSH session dropping): the monitor goes, the driver,
    running on its own, finishes the production."""
    import json

    child = spawn(env, tmp_path, "index: [1, 2]\nseconds: 3\n", "--interval", "1")
    prod = tmp_path / "prod" / "mon"
    try:
        child.expect(PROMPT)
        wait_running(prod)
        child.kill(signal.SIGHUP)
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    record = prod / ".control" / "driver.json"
    deadline = time.time() + 90
    while time.time() < deadline and json.loads(record.read_text())["stopped"] is None:
        time.sleep(0.3)
    assert json.loads(record.read_text())["stopped"] == "production complete"
    states, _, _ = rows(prod)
    assert set(states.values()) == {"done"}


def test_exit_in_the_debug_console_returns_to_the_monitor(tmp_path, env):
    child = spawn(env, tmp_path, "index: [1]\nseconds: 30\n", "--interval", "60")
    try:
        child.expect(PROMPT)
        child.sendline("debug")
        child.expect(">>> ")
        child.sendline("len(client.scheduler_info()['workers'])")
        child.expect("2")
        child.expect(">>> ")
        child.sendline("exit()")
        child.expect("back to the monitor")
        child.expect(PROMPT)
        child.sendline("status")
        child.expect(r"tasks: 1 ")
        child.expect(PROMPT)
        child.sendline("exit")
        child.expect(r"stop them")
        child.sendline("y")
        child.expect("rerun the same command to resume")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    assert "Traceback" not in (child.before or "")


def test_scale_down_hands_a_busy_workers_task_back_without_costing_an_attempt(tmp_path, env):
    child = spawn(env, tmp_path, "index: [1, 2]\nseconds: 6\n", "--interval", "1")
    prod = tmp_path / "prod" / "mon"
    try:
        child.expect(PROMPT)
        wait_running(prod, n=2)
        child.sendline("scale 1")
        child.expect(r"retiring 1; 1 running task\(s\) handed back without costing an attempt")
        child.expect(r"production complete: 2 tasks done", timeout=120)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    states, _, attempts = rows(prod)
    assert set(states.values()) == {"done"}
    assert sorted(attempts.values()) == [1, 1], attempts
