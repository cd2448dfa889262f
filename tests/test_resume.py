"""Crash-safe resume for real: SIGKILL the driver mid-production, rerun the same command,
and the production finishes with every result exactly once (finished tasks not rerun,
in-flight ones resubmitted), the stale lock taken over with a notice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

BXRUN = str(Path(sys.executable).with_name("BXRun"))
N_TASKS = 8


@pytest.fixture
def env(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 2\n")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc)}


def finished_dirs(results: Path) -> list[Path]:
    return [p for p in results.iterdir() if (p / "params.json").is_file()]


def test_sigkill_of_the_driver_then_rerun_finishes_exactly_once(tmp_path, env):
    (tmp_path / "grid.yml").write_text(f"index: {list(range(N_TASKS))}\nseconds: 1.5\n")
    command = [BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "scan",
               "--interval", "1"]
    prod = tmp_path / "prod" / "scan"
    results = prod / "results"
    first = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            if results.is_dir() and len(finished_dirs(results)) >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the first run never finished two tasks")
        os.kill(first.pid, signal.SIGKILL)  # the driver only: no chance to clean up
        first.wait()
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # its orphaned worker processes
        first.wait()
    before = {p.name for p in finished_dirs(results)}
    assert 2 <= len(before) < N_TASKS
    mtimes = {name: (results / name / "params.json").stat().st_mtime for name in before}

    second = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "taking over a stale lock" in second.stderr
    assert f"{N_TASKS - len(before)} new, {len(before)} already done" in second.stdout

    done = finished_dirs(results)
    task_ids = [json.loads((p / "params.json").read_text())["task_id"] for p in done]
    assert len(done) == N_TASKS and len(set(task_ids)) == N_TASKS  # each result exactly once
    for name in before:  # finished tasks were not rerun
        assert (results / name / "params.json").stat().st_mtime == mtimes[name]
    indices = sorted(json.loads((p / "params.json").read_text())["params"]["index"] for p in done)
    assert indices == list(range(N_TASKS))
    db = sqlite3.connect(prod / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM tasks WHERE state='done'").fetchone()[0] == N_TASKS
    assert not (prod / ".bxrun.lock").exists()
