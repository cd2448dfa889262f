"""How steps run (issue 17 warm steps, issue 11 "no orphans"): with real processes and real
signals. Each step, warm (forked from the worker's step server) or exec'd, is a separate
process in its own session; its process group dies when its attempt ends (cancelled
future, worker death, the step server's death, the driver killed with SIGKILL); a
SIGKILLed step's failure reads "killed by signal 9"; exit code and resources are recorded
the same way for both kinds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_until
from timecal_core.run import step_server as warm
from timecal_core.run.engine import describe_failure
from timecal_core.plan.grid import plan_grid
from timecal_core.contract.plugins import get_registry
from timecal_core.run.tasks import TaskFailed, execute_task

BXRUN = str(Path(sys.executable).with_name("BXRun"))


def sleeper_spec(tmp_path, **params):
    script = get_registry().script("sleeper").item
    return plan_grid(script, params, tmp_path).tasks[0]


def alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def step_pids(directory: Path) -> list[int]:
    """PIDs the sleeper steps (and their children) printed in the task logs under directory."""
    pids = []
    for log in directory.rglob("task.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("sleeper pid=") or line.startswith("sleeper child pid="):
                pids.append(int(line.split("pid=")[1].split()[0]))
    return pids


def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------------- in-process
@pytest.mark.parametrize("warm_step", [True, False])
def test_log_exit_code_and_resources_are_recorded_for_both_kinds(tmp_path, warm_step):
    spec = sleeper_spec(tmp_path, index=1, message="hi", warm=warm_step, seconds=0.2)
    result = execute_task(spec, str(tmp_path))
    final = Path(result.output).parent
    (step,) = json.loads((final / "params.json").read_text())["steps"]
    assert step["name"] == "sleep" and step["exit_code"] == 0 and step["signal"] is None
    assert step["warm"] is warm_step
    assert step["wall"] >= 0.2 and step["maxrss_kib"] > 1000 and step["user"] >= 0
    log = (final / "task.log").read_text()
    assert "sleeper pid=" in log and "--- step sleep ended: exit code 0 after" in log
    (pid,) = step_pids(final)
    assert pid != os.getpid() and pid != warm.server().proc.pid  # a process of its own
    assert ("(warm)" in log) is warm_step


def test_a_warm_step_runs_in_its_own_session_with_the_callers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMECAL_TEST_MARK", "set-after-the-server-started")
    warm.server()  # started before the variable matters
    spec = sleeper_spec(tmp_path, index=2, warm=True, seconds=3, children=1)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", execute_task(spec, str(tmp_path))))
    thread.start()
    pid, child = wait_until(lambda: (p := step_pids(tmp_path / "results")) and len(p) == 2 and p, 20,
                          "the step and its child")
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # session and group leader
    assert os.getpgid(child) == pid
    # The environment the step passes on (its child's, as exec'd) is the caller's of now.
    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
    assert b"TIMECAL_TEST_MARK=set-after-the-server-started" in environ
    thread.join(30)
    assert "r" in box


@pytest.mark.parametrize("warm_step", [True, False])
def test_a_sigkilled_step_fails_as_killed_by_signal_9_and_the_server_goes_on(tmp_path, warm_step):
    spec = sleeper_spec(tmp_path, index=3, warm=warm_step, seconds=60)
    box = {}

    def run():
        try:
            execute_task(spec, str(tmp_path))
        except TaskFailed as exc:
            box["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    (pid,) = wait_until(lambda: step_pids(tmp_path / "results"), 20, "the step to start")
    server_pid = warm.server().proc.pid
    os.kill(pid, signal.SIGKILL)
    thread.join(20)
    error = box["error"]
    assert "killed by signal 9 (SIGKILL)" in str(error)
    described = describe_failure(spec.task_id, error)
    assert (described.reason, described.cause) == ("step sleep killed by signal 9 (SIGKILL)", "signal 9")
    assert not list((tmp_path / "results" / ".tmp").iterdir())
    # The crash cost this attempt only: the same server runs the next task.
    again = execute_task(sleeper_spec(tmp_path, index=4, warm=warm_step), str(tmp_path))
    assert Path(again.output).is_file() and warm.server().proc.pid == server_pid


def test_when_the_step_server_dies_its_steps_die_and_it_is_recreated(tmp_path):
    spec = sleeper_spec(tmp_path, index=5, warm=True, seconds=60, children=1)
    box = {}

    def run():
        try:
            execute_task(spec, str(tmp_path))
        except TaskFailed as exc:
            box["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    pids = wait_until(lambda: (p := step_pids(tmp_path / "results")) and len(p) == 2 and p, 20,
                    "the step and its child")
    old = warm.server().proc.pid
    os.kill(old, signal.SIGKILL)
    thread.join(20)
    assert wait_gone(pids) == []
    assert "step server died" in box["error"].log_tail
    done = execute_task(sleeper_spec(tmp_path, index=6, warm=True), str(tmp_path))
    assert Path(done.output).is_file() and warm.server().proc.pid != old


# ---------------------------------------------------------------------- a real Dask worker
@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.mark.parametrize("warm_step", [True, False])
def test_cancelling_the_future_kills_the_step_group_and_removes_its_workdir(tmp_path, client, warm_step):
    spec = sleeper_spec(tmp_path, index=7, warm=warm_step, seconds=120, children=1)
    future = client.submit(execute_task, spec, str(tmp_path), pure=False)
    pids = wait_until(lambda: (p := step_pids(tmp_path / "results")) and len(p) == 2 and p, 30,
                    "the step and its child")
    client.cancel([future])
    assert wait_gone(pids) == []
    wait_until(lambda: not list((tmp_path / "results" / ".tmp").iterdir()), 10, "the work directory to go")
    # The worker is free again at once (its thread did not wait 120 s).
    quick = client.submit(execute_task, sleeper_spec(tmp_path, index=8, warm=warm_step), str(tmp_path),
                          pure=False)
    assert Path(quick.result(timeout=30).output).is_file()


def test_worker_death_kills_the_step_group(tmp_path, client):
    spec = sleeper_spec(tmp_path, index=9, warm=True, seconds=120, children=1)
    future = client.submit(execute_task, spec, str(tmp_path), pure=False)
    try:
        pids = wait_until(lambda: (p := step_pids(tmp_path / "results")) and len(p) == 2 and p, 30,
                        "the step and its child")
    except BaseException:
        print(future, [(p, p.read_text()) for p in tmp_path.rglob("*.log")])
        raise
    (worker_pid,) = client.run(os.getpid).values()
    os.kill(worker_pid, signal.SIGKILL)
    assert wait_gone(pids) == []


# ---------------------------------------------------------------------- a real driver
def test_sigkill_of_the_driver_leaves_no_step_running(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 2\ndashboard = no\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3]\nseconds: 120\nchildren: 1\nwarm: [true, false]\n")
    driver = subprocess.Popen([BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o",
                               "scan", "--interval", "1"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = tmp_path / "prod" / "scan" / "results"
    try:
        pids = wait_until(lambda: (p := step_pids(results)) if results.is_dir() and len(step_pids(results)) >= 4
                        else None, 90, "two steps and their children")
        os.kill(driver.pid, signal.SIGKILL)  # the driver only: it cannot clean up
        driver.wait()
        time.sleep(10)
        survivors = [p for p in set(step_pids(results)) | set(pids) if alive(p)]
        assert survivors == [], f"step processes still running 10 s after kill -9 of the driver: {survivors}"
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except OSError:
            pass
        for p in step_pids(results) if results.is_dir() else []:
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass


def test_a_failing_warm_step_costs_one_attempt_and_the_production_completes(tmp_path):
    """Real BXRun on the local backend: every warm step fails its first attempt (flaky),
    the worker survives it, the retry succeeds."""
    import sqlite3

    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 2\ndashboard = no\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    markers = [str(tmp_path / f"flaky{i}") for i in range(3)]
    (tmp_path / "grid.yml").write_text(f"flaky: {json.dumps(markers)}\nwarm: true\n")
    res = subprocess.run([BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "p",
                          "--interval", "1"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "production complete: 3 tasks done" in res.stdout
    db = sqlite3.connect(tmp_path / "prod" / "p" / "ledger.sqlite")
    assert sorted(a for (a,) in db.execute("SELECT attempts FROM tasks")) == [2, 2, 2]
    results = tmp_path / "prod" / "p" / "results"
    assert not list((results / ".tmp").iterdir())
    for params in results.glob("*/params.json"):
        (step,) = json.loads(params.read_text())["steps"]
        assert step["warm"] and step["exit_code"] == 0


def test_warm_steps_can_be_run_cold(tmp_path, monkeypatch):
    """TIMECAL_WARM_STEPS=0: the same python step in a fresh interpreter per task."""
    monkeypatch.setenv("TIMECAL_WARM_STEPS", "0")
    result = execute_task(sleeper_spec(tmp_path, index=11, warm=True, message="cold"), str(tmp_path))
    final = Path(result.output).parent
    (step,) = json.loads((final / "params.json").read_text())["steps"]
    assert step["warm"] is False and step["exit_code"] == 0
    log = (final / "task.log").read_text()
    assert "-m timecal_core.run.step_server run timecal_testplugin.sleep:main" in log and "(warm)" not in log
