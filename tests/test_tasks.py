"""Task execution: atomic results, failures that carry step/exit code/log tail, parameter
values passed literally (never through a shell), the CMSSW init snippet and environment."""

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import run_bxrun
from timecal_core.plan.grid import plan_grid
from timecal_core.contract.hookspecs import Step
from timecal_core.contract.plugins import get_registry
from timecal_core.run.tasks import (TaskFailed, clean_environment, command_for, execute_task,
                                    finished_tasks, log_path)


def sleeper_spec(tmp_path, **params):
    script = get_registry().script("sleeper").item
    return plan_grid(script, params, tmp_path).tasks[0]


def test_success_is_complete_and_atomic(tmp_path):
    spec = sleeper_spec(tmp_path, index=7, message="hi")
    result = execute_task(spec, str(tmp_path))
    final = tmp_path / "results" / spec.dirname
    assert Path(result.output) == final / "out.txt" and final.is_dir()
    record = json.loads((final / "params.json").read_text())
    assert record["params"]["index"] == 7 and record["task_id"] == spec.task_id
    assert (final / "task.log").read_text().count("=== step sleep") == 1
    assert list((tmp_path / "results" / ".tmp").iterdir()) == []  # nothing left in flight
    assert [t.task_id for t in finished_tasks(tmp_path)] == [spec.task_id]
    again = execute_task(spec, str(tmp_path))  # idempotent: not run twice
    assert again.reused and (final / "task.log").read_text().count("=== step sleep") == 1


def test_failure_carries_step_exit_code_and_last_50_lines(tmp_path):
    spec = sleeper_spec(tmp_path, exit_code=7, message="boom")
    with pytest.raises(TaskFailed) as err:
        execute_task(spec, str(tmp_path))
    exc = err.value
    assert (exc.step, exc.exit_code) == ("sleep", 7)
    assert "failing on purpose with exit code 7: boom" in exc.log_tail
    assert len(exc.log_tail.splitlines()) <= 50
    assert "step 'sleep' failed with exit code 7" in str(exc)
    assert not (tmp_path / "results" / spec.dirname).exists()  # never looks done
    assert "boom" in log_path(tmp_path, spec.dirname).read_text()  # the log stays reachable


def test_parameter_values_never_reach_a_shell(tmp_path):
    evil = f"x; touch {tmp_path / 'pwned'}; $(touch {tmp_path / 'pwned2'})"
    spec = sleeper_spec(tmp_path, message=evil)
    result = execute_task(spec, str(tmp_path))
    assert f"message={evil}" in Path(result.output).parent.joinpath("task.log").read_text()
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_cmssw_steps_get_the_init_snippet_with_quoted_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    evil = f"a b; touch {tmp_path / 'pwned'}"
    argv, env = command_for(["printf", "%s|", evil, "$HOME"], True, "export MARK=1")
    assert argv[:2] == ["bash", "-c"] and argv[2].startswith("export MARK=1\n")
    import subprocess

    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path).stdout
    assert out == f"{evil}|$HOME|"
    assert not (tmp_path / "pwned").exists()
    assert "VIRTUAL_ENV" not in env
    assert os.path.join(sys.prefix, "bin") not in env["PATH"].split(os.pathsep)


def test_clean_environment_keeps_the_rest():
    env = clean_environment({"PATH": "/usr/bin", "HOME": "/h", "PYTHONPATH": "/x", "CONDA_PREFIX": "/c"})
    assert env == {"PATH": "/usr/bin", "HOME": "/h"}


def test_bxrun_run_foreground(timerc, tmp_path):
    res = run_bxrun("--script", "Sleeper_cfg.py", "--run", "index=3", "message=hello world", "-o", "runs")
    assert res.returncode == 0, res.stderr
    results = timerc.parent / "data" / "production" / "runs" / "results"  # relative -o: under [paths] production
    (task,) = [p for p in results.iterdir() if not p.name.startswith(".")]
    assert "index3" in task.name and (task / "out.txt").is_file()
    again = run_bxrun("--script", "sleeper", "--run", "index=3", "message=hello world", "-o", "runs")
    assert again.returncode == 0 and "already complete" in again.stdout


def test_bxrun_run_failure_shows_log_tail(timerc, tmp_path):
    res = run_bxrun("--script", "sleeper", "--run", "exit_code=4", "message=bad calibration", "-o", tmp_path / "o")
    assert res.returncode == 1
    assert "step 'sleep' failed with exit code 4" in res.stderr and "bad calibration" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--run", "index"], "'index' is not of the form key=value"),
    (["--run", "index=1", "--yaml", "g.yml"], "not allowed with argument"),
    (["--run", "index=1"], "-o/--output is required"),
    (["--run", "colour=red", "-o", "x"], "unknown parameter 'colour'; allowed: index, seconds"),
    (["--run", "index=1", "-o", "x", "--interval", "0"], "--interval 0: expected a positive number"),
    (["--run", "index=1", "-o", "x", "--max-retries", "0"], "--max-retries 0: expected at least 1"),
])
def test_bad_command_lines(timerc, tmp_path, args, message):
    res = run_bxrun("--script", "sleeper", *args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
