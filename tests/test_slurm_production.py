"""``BXRun --dask slurm``: whole productions through the real single-node SLURM cluster
(tests/slurm/), non-interactively, with a timerc [slurm] section of the test's own."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import bxrun_path, results_of, run_bxrun, running_sleeper_pid, write_timerc
from slurm.fixture import slurm_cluster, squeue_ids  # noqa: F401  (fixture)

pytestmark = pytest.mark.slurm

SLURM_SECTION = "[slurm]\npartition = debug\nmemory = 500MB\nwalltime = 00:10:00\njobs = 2\n"


@pytest.fixture
def slurm_timerc(tmp_path, monkeypatch) -> Path:
    path = write_timerc(tmp_path / "config", SLURM_SECTION)
    monkeypatch.setenv("TIMECAL_CONFIG", str(path))
    return path


def slurm_job_of(pid: int) -> str:
    """The SLURM job a process runs in, read from its environment (we are root)."""
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"SLURM_JOB_ID="))


def test_grid_of_the_emulator_runs_through_slurm_jobs(slurm_cluster, slurm_timerc, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("threshold: [5000, 6000, 7000]\nnhits: 2000\noffset_step: 1.0\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "cbcsim", "--yaml", grid, "--dask", "slurm", "-o", out,
                    "--interval", "1", input="", timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    done = results_of(out)
    assert len(done) == 3
    thresholds = sorted(json.loads((p / "params.json").read_text())["params"]["threshold"] for p in done)
    assert thresholds == [5000.0, 6000.0, 7000.0]
    worker_logs = sorted((out / "logs").glob("timecal-*.err"))
    assert len(worker_logs) == 2  # the two SLURM jobs' worker logs, under <output>/logs
    jobs = {p.stem.split("-")[1] for p in worker_logs}
    # Each result names the SLURM job that ran it (params.json and the ledger).
    ran_in = {json.loads((p / "params.json").read_text())["job_id"] for p in done}
    assert ran_in and ran_in <= jobs, (ran_in, jobs)
    for job in jobs:  # slurmstepd's own words: the job lived until BXRun closed the cluster
        assert f"JOB {job} ON localhost CANCELLED" in (out / "logs" / f"timecal-{job}.err").read_text()
    deadline = time.time() + 30
    while jobs & squeue_ids() and time.time() < deadline:  # COMPLETING for a moment
        time.sleep(0.5)
    assert not jobs & squeue_ids()


def test_scancel_of_a_worker_job_mid_task(slurm_cluster, slurm_timerc, tmp_path):
    """A worker's SLURM job is cancelled while it runs a task: the task is rerun on the other
    worker, the grid completes, the monitor says which job ended and how, and a
    replacement job brings the cluster back to two workers."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3, 4]\nseconds: 3\n")
    out = tmp_path / "prod"
    args = [bxrun_path(), "--script", "sleeper", "--yaml", str(grid), "--dask", "slurm", "-o", str(out),
            "--interval", "1"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 90
        while (pid := running_sleeper_pid(out)) is None and time.time() < deadline:
            time.sleep(0.2)
        assert pid, "no task started"
        victim = slurm_job_of(pid)
        subprocess.run(["scancel", victim], check=True)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert len(results_of(out)) == 4
    assert f"slurm job {victim} " in output and "ended (CANCELLED" in output, output
    assert "while its worker was connected; Dask reruns its tasks" in output
    assert "1 needed more than one attempt" in output, output
    status = run_bxrun("--status", "-o", out)
    assert status.returncode == 0 and "done 4" in status.stdout, status.stdout
    assert f"slurm job {victim} " in status.stdout, status.stdout  # the batch event is in the ledger


def test_job_out_of_its_time_limit_fails_its_task_as_walltime(slurm_cluster, tmp_path, monkeypatch):
    """A task longer than the job's time limit ([slurm] walltime = 1 minute, SLURM's
    smallest): SLURM ends the job (TIMEOUT) and its worker with it; the failed attempt is
    recorded with cause ``walltime`` and SLURM's words, not as a lost worker, and with
    [retry] walltime = 1 the task is not run again (another attempt would time out too)."""
    import sqlite3

    timerc = write_timerc(tmp_path / "config", "[slurm]\npartition = debug\nmemory = 500MB\n"
                          "walltime = 00:01:00\njobs = 1\n\n[retry]\nwalltime = 1\n")
    monkeypatch.setenv("TIMECAL_CONFIG", str(timerc))
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1]\nseconds: 600\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", grid, "--dask", "slurm", "-o", out, "--interval", "1",
                    input="", timeout=170)  # SLURM checks time limits every 30 s: 60-90 s + start-up
    text = res.stdout + res.stderr
    assert res.returncode == 1, text  # a task failed
    job = re.search(r"slurm job (\d+) \(\S+\) ended \(TIMEOUT, TimeLimit\) while its worker was connected", text)
    assert job, text
    with sqlite3.connect(f"file:{out / 'ledger.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT attempt, cause, reason FROM attempts").fetchall()
    (attempt, cause, reason), = rows
    assert (attempt, cause) == (1, "walltime"), rows
    assert reason == "the SLURM job reached its time limit of 1:00 (TIMEOUT): raise [slurm] walltime", reason
    status = run_bxrun("--status", "-o", out)
    assert re.search(r"\b1\s+walltime\s+\w+\s+the SLURM job reached", status.stdout), status.stdout  # errors
    assert f"slurm job {job[1]} " in status.stdout  # which job it was: in the production's notes
