"""The interactive monitor, driven like a user would: the real ``BXRun`` in a pseudo-terminal
(pexpect) on the local backend, typing commands and reading the screen."""

import json
import lzma
import os
import sqlite3
import sys
import time
from pathlib import Path

import pexpect
import pytest

BXRUN = str(Path(sys.executable).with_name("BXRun"))
PROMPT = r"timecal \d+/\d+>"


@pytest.fixture
def env(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 4\n")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state"),
            "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}


def spawn(env, tmp_path, grid, *extra):
    (tmp_path / "grid.yml").write_text(grid)
    child = pexpect.spawn(BXRUN, ["--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                                  "-o", "scan", *extra], env=env, encoding="utf-8",
                          dimensions=(50, 220), timeout=60, cwd=str(tmp_path))
    return child


def ledger(tmp_path):
    db = sqlite3.connect(f"file:{tmp_path / 'prod' / 'scan' / 'ledger.sqlite'}?mode=ro", uri=True)
    return {tid: (json.loads(params), state) for tid, params, state in
            db.execute("SELECT task_id, params, state FROM tasks")}


def wait_for_state(tmp_path, predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            rows = ledger(tmp_path)
            found = [tid for tid, (params, state) in rows.items() if predicate(params, state)]
            if found:
                return found
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    pytest.fail("the ledger never reached the expected state")


def command(child, line, *expected):
    child.sendline(line)
    for text in expected:
        child.expect(text)
    child.expect(PROMPT)


def test_monitor_session_while_tasks_run(tmp_path, env):
    # 4 tasks on 4 workers: a quick success, a quick failure, and two that outlive the session
    child = spawn(env, tmp_path, "seconds: [0, 45]\nexit_code: [0, 5]\n",
                  "--interval", "60", "--max-retries", "2")
    try:
        child.expect(PROMPT)
        command(child, "status", r"tasks: 4 ", r"cluster: 4 workers", "dashboard http")
        (failing,) = wait_for_state(tmp_path, lambda p, s: p["exit_code"] == 5 and p["seconds"] == 0
                                    and s == "failed")
        # failed tasks wait for the next interval (60 s) to be retried: the user looks first
        command(child, "tasks failed", failing, "exited with code 5")
        command(child, "log " + failing[:6], "failing on purpose with exit code 5")
        command(child, "help log", "Last lines of a task's log")
        command(child, "retry", r"resubmitted 1 task\(s\)")
        wait_for_state(tmp_path, lambda p, s: p["exit_code"] == 5 and p["seconds"] == 0
                       and s == "error")
        command(child, "errors", r"count\s+to retry\s+cause\s+example\s+error", failing, "exited with code 5")
        command(child, "interval 1", "interval set to 1 s")
        # the periodic status now arrives by itself, above the prompt
        child.expect(r"\[#+-+\] 1/4 25\.0%", timeout=10)
        child.expect("cluster: 4 workers", timeout=10)
        # tab completion of commands and of task ids
        child.send("tas\t")
        child.expect("tasks")
        child.send(" fai\t")
        child.expect("failed")
        child.send("\x15")  # ctrl-U: clear the line
        child.send("log " + failing[:4] + "\t")
        child.expect(failing)
        child.send("\x15")
        command(child, "futures", r"pending\s+\d|finished|queued in the driver")
        command(child, "jobs", "no batch jobs")
        command(child, "clean", r"holding \d+ futures")
        (slow_failing,) = [t for t, (p, _) in ledger(tmp_path).items()
                           if p["seconds"] == 45 and p["exit_code"] == 5]
        command(child, "cancel " + slow_failing, r"cancelled 1 task\(s\)")
        command(child, "tasks cancelled", slow_failing)
        child.sendline("exit")
        child.expect(r"1 task\(s\) not finished; stop them")
        child.sendline("y")
        child.expect("rerun the same command to resume")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    states = ledger(tmp_path)
    assert sorted(state for _, state in states.values()) == ["cancelled", "done", "error", "pending"]
    (slow_ok,) = [state for params, state in states.values()
                  if params["seconds"] == 45 and params["exit_code"] == 0]
    assert slow_ok == "pending"  # interrupted tasks resume on the next run
    history = lzma.decompress((tmp_path / "state" / "timecal" / "history").read_bytes())
    assert b"tasks failed" in history  # persistent history (cmd2 stores it xz-compressed)
    assert not (tmp_path / "prod" / "scan" / ".bxrun.lock").exists()


def test_monitor_closes_itself_when_every_task_succeeded(tmp_path, env):
    child = spawn(env, tmp_path, "index: [1, 2, 3]\nseconds: 0.5\n", "--interval", "30")
    try:
        child.expect(r"\[#+\] 3/3 100\.0%", timeout=90)  # the final status
        child.expect(r"aggregator summary: 3 tasks")
        child.expect(r"production complete: 3 tasks done")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert (tmp_path / "prod" / "scan" / "results" / "summary.parquet").is_file()


def test_backend_commands_become_monitor_commands(tmp_path, capsys):
    """Batch backends offer commands (jobs/release/remove...) through RunningCluster.commands;
    the driver's Control advertises them and the monitor turns them into a cmd2 CommandSet
    under the backend's name, run with their argument. The engine here is a stand-in: only
    the wiring from the backend through the control seam to the shell is under test."""
    from types import SimpleNamespace

    from timecal_core.control.requests import Bulletin, Control, LocalChannel
    from timecal_core.monitor.monitor_shell import MonitorShell
    from timecal_core.views.status_text import StatusSnapshot

    calls = []
    running = SimpleNamespace(backend="batchy", commands={
        "release": (lambda arg: calls.append(arg) or f"released {arg}", "Release held jobs."),
        "status": (lambda arg: "backend status", "Would hide the monitor's own status.")})
    counts = {"pending": 1, "running": 0, "done": 0, "failed": 0, "error": 0, "cancelled": 0}
    engine = SimpleNamespace(running=running, verbose=False, finished=lambda: False,
                             ledger=SimpleNamespace(counts=lambda: counts),
                             plan=SimpleNamespace(production_dir=tmp_path),
                             snapshot=lambda: StatusSnapshot(counts=counts))
    loop = SimpleNamespace(stopped=None, interval=5.0)
    channel = LocalChannel(Control(engine, loop, Bulletin(), aggregate=lambda out: None))
    shell = MonitorShell(channel, history_file=tmp_path / "history")
    shell.onecmd("release 12 13")
    shell.onecmd("help release")
    shell.onecmd("help")
    shell.onecmd("status")
    out = capsys.readouterr().out
    assert calls == ["12 13"] and "released 12 13" in out and "Release held jobs." in out
    assert "batchy backend" in out
    assert "tasks: 1" in out and "backend status" not in out
