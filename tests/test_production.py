"""A grid production through BXRun on the real local backend, non-interactively (stdin is
not a terminal): infiles reuse, exit codes, and resume after a task's process is killed."""

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import bxrun_path, run_bxrun


def results_of(out: Path):
    return sorted(p for p in (out / "results").iterdir() if p.is_dir() and not p.name.startswith("."))


def test_grid_runs_and_infiles_are_reused(timerc, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3]\nseconds: 0.1\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", grid, "-o", out, "--interval", "1", input="")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 tasks" in res.stdout and "3 new, 0 already done" in res.stdout
    assert len(results_of(out)) == 3
    assert (out / "infiles" / "config.yml").read_text() == grid.read_text()
    other = tmp_path / "other.yml"
    other.write_text("index: [7, 8]\n")
    again = run_bxrun("--script", "sleeper", "--yaml", other, "-o", out, "--interval", "1", input="")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"--yaml {other} is ignored" in again.stderr and str(out / "infiles" / "config.yml") in again.stderr
    assert "0 new, 3 already done" in again.stdout
    assert len(results_of(out)) == 3
    wrong = run_bxrun("--script", "pucalibration", "-o", out, input="")
    assert wrong.returncode == 2 and "was produced with --script sleeper" in wrong.stderr


def test_failed_task_gives_nonzero_exit_and_lists_it(timerc, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2]\nexit_code: [0, 5]\n")
    res = run_bxrun("--script", "sleeper", "--yaml", grid, "-o", tmp_path / "p", "--interval", "1",
                    "--max-retries", "1", input="")
    assert res.returncode != 0
    assert "exit code 5" in res.stdout + res.stderr
    assert len(results_of(tmp_path / "p")) == 2  # the two successful tasks landed


def _sleeper_pids(out: Path):
    pids = []
    for log in (out / "results" / ".tmp").glob("*/task.log"):
        for line in log.read_text().splitlines():
            if line.startswith("sleeper pid="):
                pids.append(int(line.split()[1].split("=")[1]))
    return pids


def test_resume_after_a_task_process_is_killed(timerc, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3, 4]\nseconds: 4\n")
    out = tmp_path / "prod"
    args = [bxrun_path(), "--script", "sleeper", "--yaml", str(grid), "-o", str(out), "--interval", "1",
            "--max-retries", "1"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not _sleeper_pids(out) and time.time() < deadline:
            time.sleep(0.2)
        victim = _sleeper_pids(out)[0]
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, output  # one attempt allowed: the killed task failed for good
    assert len(results_of(out)) == 3
    rerun = run_bxrun("--script", "sleeper", "-o", out, "--interval", "1", input="", timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 new, 3 already done" in rerun.stdout
    done = results_of(out)
    assert len(done) == 4 and len({p.name.rpartition("__")[2] for p in done}) == 4
    assert all((p / "params.json").is_file() and (p / "out.txt").is_file() for p in done)
    assert not list((out / "results" / ".tmp").iterdir())


def test_a_failed_foreground_run_names_a_log_that_exists(timerc, tmp_path):
    res = run_bxrun("--script", "sleeper", "--run", "exit_code=4", "message=boom", "-o",
                    tmp_path / "one")
    assert res.returncode == 1
    assert "failing on purpose with exit code 4" in res.stderr
    (line,) = [l for l in res.stderr.splitlines() if l.startswith("BXRun: the whole log: ")]
    log = Path(line.split(": ", 2)[2])
    assert log.is_file() and "boom" in log.read_text()
