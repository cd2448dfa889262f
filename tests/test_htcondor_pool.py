"""``--dask htcondor`` against a real single-node HTCondor pool (tests/htcondor/: Debian 13's
HTCondor 23.9 in a chroot, on 127.0.0.1): jobs are submitted, matched, run, held, removed
and released by HTCondor itself; the Dask workers in them run this checkout's Python.

The pool's jobs run as its submit user, so each production lives in a directory that user
may write (``condor_workdir``) and BXRun runs with umask 0, as if BXRun and its jobs shared
one account, as they do on lxplus.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import bxrun_path, listening_elsewhere, results_of, running_sleeper_pid, wait_until, write_timerc
from htcondor.fixture import (as_submit_user, condor, condor_site_ca, condor_workdir,  # noqa: F401
                              htcondor_pool, queued_ids)
from timecal_backend_htcondor.plugin import start
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest
from timecal_core.ledger.sqlite_ledger import Ledger

pytestmark = pytest.mark.htcondor

SMALL_JOB = "memory = 500MB\ndisk = 100MB\n"


SITE_CA: dict[str, str] = {}  # the condor_site_ca fixture's Dask configuration, once set


@pytest.fixture(autouse=True)
def _site_ca(condor_site_ca, monkeypatch):
    """Every test here speaks TLS with the pool's site CA (see condor_site_ca), in this
    process (dask.config) and in the BXRun it starts (environment)."""
    import dask

    SITE_CA.update(condor_site_ca)
    for key, value in condor_site_ca.items():
        monkeypatch.setenv(key, value)
    dask.config.refresh()
    yield
    for key in condor_site_ca:
        monkeypatch.delenv(key, raising=False)
    dask.config.refresh()


def bxrun(workdir: Path, htcondor_lines: str, *args, timeout: float = 180, wait: bool = True,
          own_credentials: bool = False):
    """BXRun with a timerc [htcondor] section of this test's own, umask 0 (see above).
    ``own_credentials``: the production's own self-signed credentials (the default path)
    rather than the site CA, BXRun then running as the jobs' account."""
    timerc = write_timerc(workdir / "config", "[htcondor]\n" + SMALL_JOB + htcondor_lines)
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    argv = [bxrun_path(), *map(str, args)]
    if own_credentials:
        env = {k: v for k, v in env.items() if k not in SITE_CA}
        env.update(HOME=str(workdir), XDG_STATE_HOME=str(workdir / "state"))
        argv = as_submit_user(argv)
    if wait:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              umask=0, timeout=timeout)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, umask=0, start_new_session=True)


def start_in_process(workdir: Path, settings: dict):
    logs = workdir / "prod" / "logs"
    logs.mkdir(parents=True)
    logs.chmod(0o777)  # written by the jobs' user
    return start(BackendRequest(settings={"memory": "500MB", "disk": "100MB", **settings},
                                output_dir=workdir / "prod"))


def notes_of(out: Path) -> list[str]:
    ledger = Ledger.open_readonly(out)
    try:
        return [e.detail for e in ledger.production_events(500)]
    finally:
        ledger.close()


def condor_job_of(pid: int) -> str:
    """The HTCondor job a process runs in, from the job ClassAd HTCondor hands it (we are root)."""
    env = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in v)
    ad = (Path(f"/proc/{pid}/root") / env[b"_CONDOR_JOB_AD"].decode().lstrip("/")).read_text()  # in the chroot
    value = {m[0]: m[1] for m in re.findall(r"^(ClusterId|ProcId) = (\d+)$", ad, re.M)}
    return f"{value['ClusterId']}.{value['ProcId']}"


def test_emulator_grid_runs_in_htcondor_jobs(condor_workdir):
    """The whole path: timerc [htcondor] -> HTCondorCluster -> condor_submit -> two jobs on
    the pool (through a named schedd) -> tasks -> aggregation. The ledger records each job id
    with its schedd, and
    which worker process (pid) each job ran: every task's worker is one of them."""
    grid = condor_workdir / "grid.yml"
    grid.write_text("threshold: [5000, 6000, 7000]\nnhits: 2000\noffset_step: 1.0\n")
    out = condor_workdir / "prod"
    schedd = condor("condor_status", "-schedd", "-af", "Name").strip()  # named, as on lxplus
    res = bxrun(condor_workdir, f"jobs = 2\nschedd = {schedd}\n", "--script", "cbcsim", "--yaml", grid,
                "--dask", "htcondor", "-o", out, "--interval", "1", own_credentials=True)
    assert res.returncode == 0, res.stdout + res.stderr
    done = results_of(out)
    thresholds = sorted(json.loads((p / "params.json").read_text())["params"]["threshold"] for p in done)
    assert thresholds == [5000.0, 6000.0, 7000.0]
    assert "aggregat" in res.stdout.lower(), res.stdout
    notes = notes_of(out)
    jobs = {m[1]: m[2] for n in notes if (m := re.search(r"htcondor job (\d+\.\d+) on schedd (\S+) runs worker", n))}
    assert len(jobs) == 2 and set(jobs.values()) == {schedd}
    pids = {m[2]: m[1] for n in notes
            if (m := re.search(r"htcondor job (\d+\.\d+) \(.*\): worker .* connected from tls://\S+, pid (\d+)", n))}
    assert set(pids.values()) == set(jobs)
    ledger = Ledger.open_readonly(out)
    try:
        task_pids = {t.worker.rsplit(":", 1)[1] for t in ledger.tasks()}
        task_jobs = {t.job_id for t in ledger.tasks()}  # ClusterId.ProcId, from the job's ad
    finally:
        ledger.close()
    assert task_jobs and task_jobs <= set(jobs), (task_jobs, jobs)
    assert task_pids <= set(pids), (task_pids, pids)  # each task ran in a worker of a recorded job
    assert sorted(p.name for p in (out / "logs").glob("worker-*.err")) == sorted(f"worker-{j}.err" for j in jobs)
    wait_until(lambda: not set(jobs) & queued_ids(), 30, "the jobs removed by BXRun at its end")


def test_condor_rm_of_a_worker_job_mid_task(condor_workdir):
    """condor_rm of the job whose worker runs a task: the task reruns on the other worker,
    the grid completes with each result once, BXRun says which job ended and how, and the
    ledger keeps it."""
    grid = condor_workdir / "grid.yml"
    grid.write_text("index: [1, 2, 3, 4]\nseconds: 3\n")
    out = condor_workdir / "prod"
    proc = bxrun(condor_workdir, "jobs = 2\n", "--script", "sleeper", "--yaml", grid, "--dask", "htcondor",
                 "-o", out, "--interval", "1", wait=False)
    try:
        pid = wait_until(lambda: running_sleeper_pid(out) if (out / "results" / ".tmp").is_dir() else None,
                         90, "a task to start")
        victim = condor_job_of(pid)
        condor("condor_rm", victim)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    indices = sorted(json.loads((p / "params.json").read_text())["params"]["index"] for p in results_of(out))
    assert indices == [1, 2, 3, 4]  # nothing lost, nothing twice
    assert f"htcondor job {victim} " in output and "ended (removed" in output, output
    assert "while its worker was connected; Dask reruns its tasks" in output
    assert "production complete: 4 tasks done" in output, output
    status = bxrun(condor_workdir, "", "--status", "-o", out)
    assert status.returncode == 0 and "done 4" in status.stdout, status.stdout
    assert any(f"htcondor job {victim} " in n and "ended (removed" in n for n in notes_of(out))


def test_job_held_for_a_real_reason_is_replaced_then_given_up(condor_workdir):
    """An output directory the job cannot write: HTCondor holds the job. BXRun prints the
    HoldReason, replaces the job once (max_replacements = 1), and when the replacement is
    held too gives up with exit 2, naming the cause; no job is left in the queue."""
    logs = condor_workdir / "root-only-logs"
    logs.mkdir(mode=0o755)
    out = condor_workdir / "prod"
    grid = condor_workdir / "grid.yml"
    grid.write_text("index: [1]\n")
    before = queued_ids()
    res = bxrun(condor_workdir, f"jobs = 1\nmax_replacements = 1\nlog_directory = {logs}\n",
                "--script", "sleeper", "--yaml", grid, "--dask", "htcondor", "-o", out)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    held = re.findall(r"^BXRun: htcondor job (\d+\.\d+) \(\S+\) is held: (.*?); (removed, replaced \(1/1\)|left held)",
                      text, re.M)
    assert [h[2] for h in held] == ["removed, replaced (1/1)", "left held"], text
    assert all(re.fullmatch(r"Error from \S+: unable to establish standard output stream", h[1]) for h in held), text
    assert ("no Dask worker connected and 1 jobs already replaced ([htcondor] max_replacements = 1): giving up; "
            f"last: htcondor job {held[1][0]} (HTCondorCluster-0) is held: {held[1][1]}\n") in text, text
    wait_until(lambda: queued_ids() <= before, 30, "the held jobs removed")


def test_wrong_python_is_reported_with_its_log_then_given_up(condor_workdir):
    """A worker that cannot start (a wrong [htcondor] python): the job ends at once; BXRun
    quotes the job's stderr, replaces it, then gives up naming the cause."""
    out = condor_workdir / "prod"
    grid = condor_workdir / "grid.yml"
    grid.write_text("index: [1]\n")
    res = bxrun(condor_workdir, "jobs = 1\nmax_replacements = 1\npython = /nonexistent/python3\n",
                "--script", "sleeper", "--yaml", grid, "--dask", "htcondor", "-o", out)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    first, second = re.findall(r"^BXRun: htcondor job (\d+\.\d+) \(\S+\) ended \((.*?)\) before its Dask "
                               r"worker connected: (.*?); (.*?); see (\S+)$", text, re.M)
    assert "/nonexistent/python3" in first[2] and "not found" in first[2], text
    assert first[3] == "replaced (1/1)" and second[3].startswith("not replaced"), text
    assert first[4] == str(out / "logs" / f"worker-{first[0]}.err")
    assert "giving up" in text and "/nonexistent/python3" in text.split("giving up")[1], text


def test_condor_hold_before_the_worker_connects_is_replaced_up_to_the_limit(condor_workdir):
    """condor_hold of a job before its worker connects: reported with its HoldReason and
    replaced (max_replacements = 1); the replacement, held too, is left held for the user
    to release or remove (test_monitor_jobs_release_remove_on_real_jobs does that)."""
    running = start_in_process(condor_workdir, {"jobs": "1", "max_replacements": "1",
                                                "prologue": "sleep 4"})  # time to hold before it connects
    try:
        first = set(running.live_jobs().values())
        running.scale_jobs(2)

        def hold_new(known: set[str]) -> str:
            (job,) = wait_until(lambda: set(running.live_jobs().values()) - known, 30, "a new job")
            condor("condor_hold", job)
            return job

        held = hold_new(first)
        notices = wait_until(lambda: [n for n in running.supervise() if "is held" in n], 30, "the hold")
        assert notices == [f"htcondor job {held} ({running._job_names[held]}) is held: "
                           f"via condor_hold (by user tester); removed, replaced (1/1)"]
        wait_until(lambda: held not in queued_ids(), 30, "the held job removed")
        again = hold_new(first | {held})
        (notice,) = wait_until(lambda: [n for n in running.supervise() if "is held" in n], 30, "the 2nd hold")
        assert notice == (f"htcondor job {again} ({running._job_names[again]}) is held: via condor_hold (by "
                          f"user tester); left held (1 jobs already replaced ([htcondor] max_replacements = 1)): "
                          f"fix the cause, then 'release {again}', or 'remove {again}'")
        rows = {j.job_id: j for j in running.batch_jobs()}
        assert (rows[again].state, rows[again].reason) == ("held", "via condor_hold (by user tester)")
        assert again in queued_ids()
    finally:
        running.close()


def test_job_waiting_for_resources_is_not_a_failure(condor_workdir):
    """A memory request larger than any slot: HTCondor does not hold the job, it stays idle.
    start() returns after a short grace (a busy pool is normal) and the jobs table shows
    the job idle."""
    t0 = time.monotonic()
    running = start_in_process(condor_workdir, {"jobs": "1", "memory": "64GB"})
    try:
        assert time.monotonic() - t0 < 40
        (row,) = running.batch_jobs()
        assert (row.state, row.worker) == ("idle", "")
        assert row.job_id in queued_ids()
        assert not [n for n in running.supervise() if "held" in n or "ended" in n]
    finally:
        running.close()


def test_monitor_jobs_release_remove_on_real_jobs(condor_workdir):
    """The interactive monitor (a real terminal) on real jobs: condor_hold of a running
    worker's job is reported with its HoldReason (left held: max_replacements = 0); 'jobs'
    shows it held, 'release' makes HTCondor run it again, 'remove' takes it away."""
    import pexpect

    timerc = write_timerc(condor_workdir / "config", "[htcondor]\n" + SMALL_JOB + "jobs = 2\nmax_replacements = 0\n")
    (condor_workdir / "grid.yml").write_text("index: [1, 2, 3, 4]\nseconds: 60\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1",
           "XDG_STATE_HOME": str(condor_workdir / "state"),
           # a lost worker's job is removed by dask-jobqueue after this: give 'release' its time
           "DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "120s"}
    before = queued_ids()
    child = pexpect.spawn("/bin/sh", ["-c", 'umask 0; exec "$0" "$@"', bxrun_path(), "--script", "sleeper",
                                      "--yaml", str(condor_workdir / "grid.yml"), "--dask", "htcondor",
                                      "-o", str(condor_workdir / "prod"), "--interval", "1"],
                          env=env, encoding="utf-8", dimensions=(50, 250), timeout=60)
    prompt = r"timecal \d+/\d+>"

    def command(line, *expected):
        child.sendline(line)
        for text in expected:
            child.expect(text)
        child.expect(prompt)

    def running_jobs() -> list[str]:
        rows = [line.split() for line in condor("condor_q", "-af", "ClusterId", "ProcId", "JobStatus").splitlines()]
        return [f"{c}.{p}" for c, p, status in rows if status == "2" and f"{c}.{p}" not in before]

    try:
        child.expect(prompt)
        victim = wait_until(lambda: len(running_jobs()) == 2 and running_jobs(), 60, "two running jobs")[0]
        command("jobs", re.escape(victim), "running")
        condor("condor_hold", victim)
        child.expect(rf"htcondor job {re.escape(victim)} \(\S+\) is held: via condor_hold \(by user tester\); left held")
        child.expect(prompt)
        command("jobs", rf"{re.escape(victim)}\s+held\s+via condor_hold")
        command(f"release {victim}", f"released 1 job\\(s\\): {re.escape(victim)}")
        wait_until(lambda: condor("condor_q", victim, "-af", "JobStatus").strip() == "2", 60, "the released job to run")
        command(f"remove {victim}", f"removed 1 job\\(s\\): {re.escape(victim)}")
        child.expect(rf"htcondor job {re.escape(victim)} \(\S+\) ended \(removed")
        wait_until(lambda: victim not in queued_ids(), 30, "condor_rm")
        child.sendline("exit")
        child.expect(r"not finished; stop them")
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)


def test_unknown_schedd_fails_at_once(condor_workdir):
    """A mistyped [htcondor] schedd: a one-line error before anything is submitted."""
    before = queued_ids()
    with pytest.raises(UserError, match=r"^timerc \[htcondor\] schedd = 'bigbird99.cern.ch': the collector "
                                        r"knows no such schedd; 'condor_status -schedd' lists them$"):
        start_in_process(condor_workdir, {"schedd": "bigbird99.cern.ch"})
    assert queued_ids() == before


def test_unreachable_scheduler_times_out_naming_the_address(condor_workdir):
    """The scheduler advertises an address where it does not listen (a wrong interface on a
    multi-homed login node): the job runs, its worker never connects, and start() gives up
    after connect_timeout saying which address was advertised; the job is removed."""
    before = queued_ids()
    t0 = time.monotonic()
    interface, contact = listening_elsewhere()
    with pytest.raises(UserError) as err:
        start_in_process(condor_workdir, {"jobs": "1", "contact_address": contact, "scheduler_interface": interface,
                                          "connect_timeout": "3"})
    message = str(err.value)
    assert f"but its Dask worker never reached the scheduler at {contact} (advertised from " \
           "[htcondor] contact_address); set [htcondor] scheduler_interface (or contact_address)" in message
    assert str(condor_workdir / "prod" / "logs" / "worker-") in message
    assert time.monotonic() - t0 < 60
    wait_until(lambda: queued_ids() <= before, 30, "the job of the failed start to be removed")


def attempts_of(out: Path) -> list[tuple]:
    """(task, attempt, cause, reason) of every failed attempt, read from the ledger's SQLite."""
    import sqlite3

    with sqlite3.connect(f"file:{out / 'ledger.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT task_id, attempt, cause, reason FROM attempts WHERE outcome = 'failed' "
                          "ORDER BY task_id, attempt").fetchall()


def test_job_held_by_a_run_time_policy_fails_its_task_as_walltime(condor_workdir):
    """The job's own periodic_hold on its run time (submit_directives, as a site's MaxRuntime
    policy would) holds the worker's job while its task runs: HTCondor kills the worker, and
    the failed attempt is recorded with cause ``walltime`` and HTCondor's words (not just
    "worker lost"); with [retry] walltime = 1 the task is not run again."""
    grid = condor_workdir / "grid.yml"
    grid.write_text("index: [1]\nseconds: 300\n")
    out = condor_workdir / "prod"
    # 30 s: time for the worker to connect on a loaded machine (held before, it is only replaced)
    res = bxrun(condor_workdir, "jobs = 1\nsubmit_directives =\n    periodic_hold = (time() - JobCurrentStartDate) > 30\n"
                "\n[retry]\nwalltime = 1\n", "--script", "sleeper", "--yaml", grid, "--dask", "htcondor",
                "-o", out, "--interval", "1", timeout=150)
    text = res.stdout + res.stderr
    assert res.returncode == 1, text  # a task failed
    held = re.search(r"htcondor job (\d+\.\d+) \(\S+\) is held: The job attribute PeriodicHold expression", text)
    assert held, text
    (attempt,) = attempts_of(out)
    assert attempt[1:3] == (1, "walltime"), attempt
    assert attempt[3] == ("HTCondor held the job: The job attribute PeriodicHold expression "
                          "'(time() - JobCurrentStartDate) > 30' evaluated to TRUE (code 3)"), attempt
    assert re.search(r"\b1 x walltime: HTCondor held the job", text), text  # the end report groups failures
