"""Drivers that outlive their terminal: ``BXRun --detach`` runs the driver on its own (new
session, no terminal, log in OUT/logs/driver.log) and monitors attach to it from any
terminal over the production's owner-only Unix socket. Real processes, real signals, two
monitors in two real pseudo-terminals."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pexpect

from conftest import wait_for

BIN = Path(sys.executable).parent
PROMPT = r"timecal \d+/\d+>"


def detach(tmp_path, env, grid, name="det", *extra):
    (tmp_path / "grid.yml").write_text(grid)
    out = subprocess.run([str(BIN / "BXRun"), "--script", "sleeper", "--yaml",
                          str(tmp_path / "grid.yml"), "-o", name, "--interval", "1", "--detach",
                          *extra], env=env, capture_output=True, text=True, timeout=180,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    record = json.loads((tmp_path / "prod" / name / ".control" / "driver.json").read_text())
    return out, record


def states(prod):
    db = sqlite3.connect(f"file:{prod / 'ledger.sqlite'}?mode=ro", uri=True)
    return {tid: (json.loads(p), s) for tid, p, s in db.execute("SELECT task_id, params, state FROM tasks")}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0] != "Z"


def attach(env, name):
    return pexpect.spawn(str(BIN / "timecal"), ["attach", name], env=env, encoding="utf-8",
                         dimensions=(50, 220), timeout=30)


def test_a_detached_driver_survives_its_terminal_and_completes(tmp_path, env):
    """The starting terminal's session goes away (its shell and BXRun get SIGHUP): the
    driver, in a session of its own, finishes the production."""
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3]\nseconds: 2\n")
    term = pexpect.spawn("bash", ["--norc", "--noprofile"], env=env, encoding="utf-8", timeout=120,
                         cwd=str(tmp_path))
    term.sendline(f"'{BIN / 'BXRun'}' --script sleeper --yaml grid.yml -o det --interval 1 --detach")
    term.expect("driver running on its own")
    term.close(force=True)  # the terminal goes away: SIGHUP to its session
    prod = tmp_path / "prod" / "det"
    record = json.loads((prod / ".control" / "driver.json").read_text())
    assert os.getsid(record["pid"]) == record["pid"]  # a session of its own
    wait_for(lambda: not pid_alive(record["pid"]), what="the driver to finish")
    assert json.loads((prod / ".control" / "driver.json").read_text())["stopped"] == \
        "production complete"
    assert {s for _, s in states(prod).values()} == {"done"}
    assert "production complete: 3 tasks done" in (prod / "logs" / "driver.log").read_text()


def test_two_monitors_attached_see_each_others_orders(tmp_path, env):
    _, record = detach(tmp_path, env, "index: [1, 2, 3]\nseconds: 40\n")
    prod = tmp_path / "prod" / "det"
    a, b = attach(env, "det"), attach(env, "det")
    try:
        a.expect(PROMPT)
        b.expect(PROMPT)
        victim = sorted(states(prod))[0]
        a.sendline(f"cancel {victim}")
        a.expect(r"cancelled 1 task\(s\)")
        t0 = time.time()
        b.sendline("tasks cancelled")
        b.expect(victim)
        assert time.time() - t0 < 1.5
        b.expect(PROMPT)
        b.sendline(f"retry {victim}")
        b.expect(r"resubmitted 1 task\(s\)")
        wait_for(lambda: states(prod)[victim][1] in ("pending", "running"), timeout=5,
                 what="the retry to show in the ledger")
        a.sendline("detach")  # leaving without exit: the driver goes on
        a.expect("detached: the driver goes on")
        a.expect(pexpect.EOF)
        assert pid_alive(record["pid"])
        b.sendline("stop")
        b.expect(r"stop them")
        b.sendline("y")
        b.expect(pexpect.EOF)
    finally:
        a.close(force=True)
        b.close(force=True)
    wait_for(lambda: not pid_alive(record["pid"]), what="the driver to stop")
    assert set(s for _, s in states(prod).values()) == {"pending"}
    status = subprocess.run([str(BIN / "BXRun"), "--status", "-o", "det"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "driver stopped (stopped by the user)" in status.stdout


def test_kill_9_of_a_detached_driver_is_seen_as_dead_then_resumed(tmp_path, env):
    from timecal_core.monitor.home_shell import find_productions, production_row

    _, record = detach(tmp_path, env, "index: [1, 2]\nseconds: 4\n")
    prod = tmp_path / "prod" / "det"
    wait_for(lambda: any("sleeper pid=" in p.read_text() for p in
                         (prod / "results" / ".tmp").glob("*/task.log")), what="a task to start")
    os.kill(record["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(record["pid"]), what="the driver to die")
    out = subprocess.run([str(BIN / "timecal"), "attach", "det"], env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "driver dead" in line and "last sign of life" in line
    assert f"resume it with: BXRun -o {prod} --detach" in line
    status = subprocess.run([str(BIN / "BXRun"), "--status", "-o", "det"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "driver dead" in status.stdout
    row = production_row("det", find_productions([tmp_path / "prod"])["det"])
    assert row[4] == "dead"  # what the home shell's 'productions' shows
    resumed = subprocess.run([str(BIN / "BXRun"), "-o", "det", "--interval", "1"], env=env,
                             capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert "production complete: 2 tasks done" in resumed.stdout, resumed.stdout + resumed.stderr


def test_the_control_socket_is_the_owners_only(tmp_path, env):
    _, record = detach(tmp_path, env, "index: [1]\nseconds: 30\n")
    try:
        sock = Path(record["socket"])
        assert (sock.stat().st_mode & 0o777) == 0o600
        assert (sock.parent.stat().st_mode & 0o777) == 0o700
    finally:
        subprocess.run([str(BIN / "timecal"), "stop", "det"], env=env, capture_output=True,
                       timeout=60)
    wait_for(lambda: not pid_alive(record["pid"]), what="the driver to stop")
