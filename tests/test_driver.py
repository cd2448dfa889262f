"""The production engine through the real ``BXRun`` in non-interactive mode (stdin is not a
terminal), on the local Dask backend, with the ``sleeper`` script of the test plugin:
status lines, retries, failures listed, summary aggregation, a worker killed mid-task,
``--status`` and ``--rebuild-ledger``."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

BXRUN = str(Path(sys.executable).with_name("BXRun"))


@pytest.fixture
def env(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"calibration = {tmp_path / 'calib'}\n[local]\nworkers = 2\n")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}


def grid(tmp_path, text, name="grid.yml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def bxrun(env, *args, timeout=180):
    return subprocess.run([BXRUN, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def ledger_rows(prod):
    db = sqlite3.connect(prod / "ledger.sqlite")
    db.row_factory = sqlite3.Row
    return {r["task_id"]: dict(r) for r in db.execute("SELECT * FROM tasks")}


def test_all_succeed_status_lines_and_summary(tmp_path, env):
    g = grid(tmp_path, "index: [1, 2, 3, 4]\nseconds: 0.3\n")
    out = bxrun(env, "--script", "sleeper", "--yaml", g, "-o", "ok", "--interval", "1")
    assert out.returncode == 0, out.stderr
    assert "done 4/4 (100.0%)" in out.stdout and "ETA" in out.stdout
    assert "production complete" in out.stdout
    prod = tmp_path / "prod" / "ok"
    summary = pd.read_parquet(prod / "results" / "summary.parquet")
    assert sorted(summary["index"]) == [1, 2, 3, 4]
    assert (summary["attempts"] == 1).all()
    assert (summary["runtime"] >= 0.3).all()  # each task slept 0.3 s
    for row in summary.itertuples():
        assert Path(row.output).is_file() and Path(row.output).parent == Path(row.directory)
    rows = ledger_rows(prod)
    assert {r["state"] for r in rows.values()} == {"done"} and set(rows) == set(summary["task_id"])
    # a rerun has nothing to do and says so, without starting a cluster
    again = bxrun(env, "--script", "sleeper", "-o", "ok", "--interval", "1")
    assert again.returncode == 0 and "dashboard" not in again.stdout
    assert "production complete" in again.stdout


def test_failures_retried_then_listed_and_exit_nonzero(tmp_path, env):
    g = grid(tmp_path, "index: [1, 2]\nexit_code: [0, 5]\n")
    out = bxrun(env, "--script", "sleeper", "--yaml", g, "-o", "bad", "--interval", "1",
                "--max-retries", "2")
    assert out.returncode == 1
    prod = tmp_path / "prod" / "bad"
    rows = ledger_rows(prod)
    failed = {t: r for t, r in rows.items() if r["params"].find('"exit_code": 5') >= 0}
    assert len(failed) == 2
    for tid, row in failed.items():
        assert (row["state"], row["attempts"], row["exit_code"]) == ("error", 2, 5)
        assert "failing on purpose with exit code 5" in row["error"]
        assert tid in out.stdout  # listed at the end
    ok = [r for t, r in rows.items() if t not in failed]
    assert [(r["state"], r["attempts"]) for r in ok] == [("done", 1), ("done", 1)]
    assert "did not succeed" in out.stdout and "exited with code 5" in out.stdout
    assert not (prod / "results" / "summary.parquet").exists()  # not every task succeeded

    status = bxrun(env, "--status", "-o", "bad")
    assert status.returncode == 0
    assert "error 2 (50.0%)" in status.stdout and "done 2 (50.0%)" in status.stdout
    assert "exited with code 5" in status.stdout and "last events:" in status.stdout


def test_a_task_failing_once_succeeds_on_its_second_attempt(tmp_path, env):
    g = grid(tmp_path, f"index: 1\nflaky: {tmp_path / 'marker'}\n")
    out = bxrun(env, "--script", "sleeper", "--yaml", g, "-o", "flaky", "--interval", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resubmitted 1 failed task(s)" in out.stdout
    summary = pd.read_parquet(tmp_path / "prod" / "flaky" / "results" / "summary.parquet")
    assert list(summary["attempts"]) == [2]


def test_worker_killed_mid_task_costs_one_attempt(tmp_path, env):
    """SIGKILL the Dask worker process running a task: the task is retried elsewhere."""
    g = grid(tmp_path, "index: [1]\nseconds: 4\n")
    proc = subprocess.Popen([BXRUN, "--script", "sleeper", "--yaml", g, "-o", "kill",
                             "--interval", "1"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        prod = tmp_path / "prod" / "kill"
        sleeper_pid = None
        deadline = time.time() + 60
        while sleeper_pid is None and time.time() < deadline:
            for log in (prod / "results" / ".tmp").glob("*/task.log"):
                for line in log.read_text().splitlines():
                    if line.startswith("sleeper pid="):
                        sleeper_pid = int(line.split()[1].split("=")[1])
            time.sleep(0.2)
        assert sleeper_pid, "the task never started"
        with open(f"/proc/{sleeper_pid}/stat") as fh:  # the sleeper's parent is the step
            server_pid = int(fh.read().rpartition(")")[2].split()[1])  # server (timecal_core.run.step_server)
        with open(f"/proc/{server_pid}/stat") as fh:
            worker_pid = int(fh.read().rpartition(")")[2].split()[1])  # whose parent is the worker
        os.kill(worker_pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out + err
    (row,) = ledger_rows(prod).values()
    assert (row["state"], row["attempts"]) == ("done", 2)
    events = sqlite3.connect(prod / "ledger.sqlite").execute(
        "SELECT detail FROM events WHERE task_id=?", (row["task_id"],)).fetchall()
    assert any("worker running the task died" in d for (d,) in events)
    # The lost attempt's cause is node, with the lost worker's host as Dask knew it.
    attempts = sqlite3.connect(prod / "ledger.sqlite").execute(
        "SELECT outcome, cause, host FROM attempts WHERE task_id=? ORDER BY attempt",
        (row["task_id"],)).fetchall()
    assert attempts[0] == ("failed", "node", "127.0.0.1") and attempts[1][:2] == ("done", None)
    results = [p for p in (prod / "results").iterdir() if not p.name.startswith(".")
               and p.is_dir()]
    assert len(results) == 1 and (results[0] / "params.json").is_file()


def test_status_without_ledger_and_rebuild(tmp_path, env):
    g = grid(tmp_path, "index: [1, 2, 3]\n")
    assert bxrun(env, "--script", "sleeper", "--yaml", g, "-o", "rb", "--interval", "1").returncode == 0
    prod = tmp_path / "prod" / "rb"
    (prod / "ledger.sqlite").unlink()
    status = bxrun(env, "--status", "-o", "rb")
    assert status.returncode == 2
    assert f"BXRun --rebuild-ledger -o {prod}" in status.stderr
    # one result disappears: the rebuilt ledger says so
    victim = next(p for p in (prod / "results").iterdir() if (p / "params.json").is_file())
    json.loads((victim / "params.json").read_text())
    import shutil
    shutil.rmtree(victim)
    rebuilt = bxrun(env, "--rebuild-ledger", "-o", "rb")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "3 tasks, 2 done on disk, 1 pending" in rebuilt.stdout
    status = bxrun(env, "--status", "-o", "rb")
    assert "done 2 (66.7%)" in status.stdout and "pending 1 (33.3%)" in status.stdout


def test_a_second_driver_on_the_same_output_is_refused(tmp_path, env):
    g = grid(tmp_path, "index: [1]\nseconds: 60\n")
    first = subprocess.Popen([BXRUN, "--script", "sleeper", "--yaml", g, "-o", "twice",
                              "--interval", "1"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        lock = tmp_path / "prod" / "twice" / ".bxrun.lock"
        deadline = time.time() + 30
        while not lock.exists() and time.time() < deadline:
            time.sleep(0.1)
        second = bxrun(env, "--script", "sleeper", "-o", "twice", "--interval", "1")
        assert second.returncode == 2
        assert "another BXRun drives this production" in second.stderr
        assert f"PID {first.pid}" in second.stderr
        status = bxrun(env, "--status", "-o", "twice")
        assert f"driver: running (host" in status.stdout and f"PID {first.pid}" in status.stdout
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
