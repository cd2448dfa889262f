"""Failure causes and resources with real tasks: the real ``BXRun`` (non-interactive) on the
local Dask backend with the test plugin's ``sleeper`` script, whose step fills memory, exits
with a code or sleeps on demand; the ledger and params.json are read as a user would. (A killed
worker is cause node: tests/test_driver.py, test_worker_killed_mid_task_costs_one_attempt.)"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BXRUN = str(Path(sys.executable).with_name("BXRun"))


def make_env(tmp_path, local="workers = 1\n", extra=""):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"calibration = {tmp_path / 'calib'}\n[local]\n{local}{extra}")
    return {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}


def bxrun(env, tmp_path, grid_text, name, *args, timeout=240):
    grid = tmp_path / f"{name}.yml"
    grid.write_text(grid_text)
    return subprocess.run([BXRUN, "--script", "sleeper", "--yaml", str(grid), "-o", name,
                           "--interval", "1", *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def rows(prod):
    db = sqlite3.connect(prod / "ledger.sqlite")
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM tasks")]


def attempts(prod, task_id):
    db = sqlite3.connect(prod / "ledger.sqlite")
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM attempts WHERE task_id=? ORDER BY attempt",
                                        (task_id,))]


def test_a_step_beyond_the_workers_memory_limit_is_oom(tmp_path):
    """The worker may use 400 MB; its step fills 800 MiB: the step server kills it at the
    limit (Dask's own limit would only see the worker process) and the cause is oom, which
    timerc [retry] oom = 1 does not retry."""
    env = make_env(tmp_path, "workers = 1\nmemory_limit = 400MB\n", "[retry]\noom = 1\n")
    out = bxrun(env, tmp_path, "index: 1\nallocate: 800\nseconds: 20\n", "oom")
    assert out.returncode == 1, out.stdout + out.stderr
    (row,) = rows(tmp_path / "prod" / "oom")
    assert (row["state"], row["attempts"], row["cause"]) == ("error", 1, "oom")
    assert row["reason"].startswith("step sleep out of memory (the worker's limit is 381 MiB)")
    assert row["maxrss_kib"] * 1024 > 400e6 * 0.9  # what it had when it was killed
    (attempt,) = attempts(tmp_path / "prod" / "oom", row["task_id"])
    assert attempt["cause"] == "oom" and attempt["outcome"] == "failed"
    assert "out of memory" in out.stdout


def test_the_same_exit_twice_is_not_retried_a_third_time(tmp_path):
    env = make_env(tmp_path)
    out = bxrun(env, tmp_path, "index: [1]\nexit_code: 3\nmessage: no hits in the input\n",
                "det", "--max-retries", "5")
    assert out.returncode == 1
    (row,) = rows(tmp_path / "prod" / "det")
    assert (row["state"], row["attempts"], row["cause"]) == ("error", 2, "exit 3")
    assert row["reason"] == "step sleep exited with code 3: failing on purpose with exit code 3: " \
                           "no hits in the input"
    events = sqlite3.connect(tmp_path / "prod" / "det" / "ledger.sqlite").execute(
        "SELECT detail FROM events WHERE task_id=? AND state='error'", (row["task_id"],)).fetchall()
    assert any("the same exit 3 2 times in a row: not retried" in d for (d,) in events)


def test_resources_and_provenance_per_attempt(tmp_path):
    """A step that holds 200 MiB shows a peak RSS of at least 200 MiB; CPU, host, output size
    and the software are in params.json, the ledger and summary.parquet."""
    env = make_env(tmp_path, "workers = 2\n")
    out = bxrun(env, tmp_path, "index: [1, 2]\nallocate: 200\nseconds: 1\n", "res")
    assert out.returncode == 0, out.stdout + out.stderr
    prod = tmp_path / "prod" / "res"
    summary = pd.read_parquet(prod / "results" / "summary.parquet")
    for row in rows(prod):
        assert row["state"] == "done" and row["maxrss_kib"] >= 200 * 1024
        assert 0 < row["cpu"] < 30 and row["host"] == socket.gethostname()
        assert row["output_bytes"] > 0 and row["end"] - row["start"] >= 1
        record = json.loads(next(prod.glob(f"results/*{row['task_id']}/params.json")).read_text())
        for key in ("host", "worker", "job_id", "start", "end", "cpu", "maxrss_kib", "output_bytes"):
            assert key in record, key
        assert record["maxrss_kib"] == row["maxrss_kib"] and record["job_id"] is None
        software = record["software"]
        assert software["timecal"] and software["python"] == ".".join(map(str, sys.version_info[:3]))
        assert "timecal-testplugin" in software["plugins"]
        (attempt,) = attempts(prod, row["task_id"])
        assert attempt["outcome"] == "done" and attempt["maxrss_kib"] == row["maxrss_kib"]
        line = summary[summary["task_id"] == row["task_id"]].iloc[0]
        assert line["prov_maxrss_kib"] == row["maxrss_kib"] and line["prov_host"] == row["host"]
        assert line["prov_timecal_version"] == software["timecal"]
        assert line["prov_output_bytes"] > 0 and line["prov_cpu"] == pytest.approx(record["cpu"])
