"""The slurm backend against a real single-node SLURM cluster (tests/slurm/).

Each test reads its settings from a timerc [slurm] section of its own (TIMECAL_CONFIG), so
the path from the user's file to the job script is the one BXRun takes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import cloudpickle
import dask
import pytest
from distributed import Client

from conftest import listening_elsewhere, wait_until, write_timerc
from slurm.fixture import slurm_cluster, squeue_ids  # noqa: F401  (fixture)
from timecal_backend_slurm.plugin import start
from timecal_core.config.timerc import load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest

pytestmark = pytest.mark.slurm
# Workers in SLURM jobs cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL_JOB = "memory = 400MB\nwalltime = 00:10:00\n"


def start_from_timerc(tmp_path, monkeypatch, slurm_lines: str, partition: str = "debug"):
    path = write_timerc(tmp_path / "config", f"[slurm]\npartition = {partition}\n" + SMALL_JOB + slurm_lines)
    monkeypatch.setenv("TIMECAL_CONFIG", str(path))
    section = load_timerc().section("slurm")
    return start(BackendRequest(settings=section, output_dir=tmp_path / "prod"))


def job_of_this_process() -> tuple[str, str]:
    """Run on a worker: the SLURM job it lives in, and a subprocess's view of it."""
    child = subprocess.run(["sh", "-c", "echo $SLURM_JOB_ID"], capture_output=True, text=True)
    return os.environ.get("SLURM_JOB_ID", ""), child.stdout.strip()


def problems(notices: list[str]) -> list[str]:
    """The notices that report trouble (the others record which job runs which worker)."""
    return [n for n in notices if " runs worker " not in n and " connected from " not in n]


def reported(running, capsys, seen: list[str]) -> list[str]:
    """Trouble reported so far: printed while start() waited for the first worker, or
    returned by supervise() since."""
    seen.extend(line[len("BXRun: "):] for line in capsys.readouterr().out.splitlines()
                if line.startswith("BXRun: "))
    seen.extend(problems(running.supervise()))
    return seen


def test_dask_computation_runs_in_slurm_jobs(slurm_cluster, tmp_path, monkeypatch):
    running = start_from_timerc(tmp_path, monkeypatch, "jobs = 2\n")
    try:
        with Client(running.cluster) as client:
            client.wait_for_workers(2, timeout=60)
            results = client.gather(client.map(lambda i: job_of_this_process(), range(8), pure=False))
            rows = running.batch_jobs()
        used = {job for job, _ in results}
        assert all(job and job == seen for job, seen in results)  # subprocesses see the job too
        listed = {r.job_id for r in rows}
        assert used <= listed and len(listed) == 2
        assert listed <= squeue_ids()  # SLURM itself lists them
        assert {r.state for r in rows} == {"RUNNING"} and all(r.worker for r in rows)
        logs = sorted(p.name for p in (tmp_path / "prod" / "logs").iterdir())
        assert logs == sorted(f"timecal-{j}.{ext}" for j in listed for ext in ("err", "out"))
    finally:
        running.close()
    wait_until(lambda: not (listed & squeue_ids()), 30, "jobs cancelled by close()")


def test_nonexistent_partition_shows_slurms_message(slurm_cluster, tmp_path, monkeypatch):
    before = squeue_ids()
    with pytest.raises(UserError) as err:
        start_from_timerc(tmp_path, monkeypatch, "jobs = 1\n", partition="nosuchpartition")
    message = str(err.value)
    assert "partition = nosuchpartition" in message
    assert "invalid partition specified: nosuchpartition" in message  # sbatch's own words
    assert squeue_ids() == before  # nothing was queued


def test_unreachable_scheduler_times_out_naming_the_address(slurm_cluster, tmp_path, monkeypatch):
    """The scheduler advertises an address where it does not listen (as a wrong interface on
    a multi-homed login node would): the job runs, its worker never connects, and start()
    gives up after connect_timeout saying which address was advertised."""
    t0 = time.monotonic()
    interface, contact = listening_elsewhere()
    with pytest.raises(UserError) as err:
        start_from_timerc(tmp_path, monkeypatch, f"jobs = 1\ncontact_address = {contact}\n"
                          f"scheduler_interface = {interface}\nconnect_timeout = 3\n")
    message = str(err.value)
    assert f"never reached the scheduler at {contact} (advertised from [slurm] contact_address)" in message
    assert "scheduler_interface" in message and str(tmp_path / "prod" / "logs") in message
    assert time.monotonic() - t0 < 60
    job = message.split("slurm job ")[1].split()[0]
    wait_until(lambda: job not in squeue_ids(), 30, "the job of the failed start to be cancelled")


def test_contact_address_on_a_busy_port_is_a_one_line_error(slurm_cluster, tmp_path, monkeypatch):
    """The scheduler listens on the contact address's port: taken by another program, the
    start stops at once saying so, before any job is queued."""
    before = squeue_ids()
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError) as err:
            start_from_timerc(tmp_path, monkeypatch, f"jobs = 1\ncontact_address = tls://login1.example.org:{port}\n")
    assert str(err.value) == (f"timerc [slurm] contact_address: the scheduler cannot listen on port {port} of "
                              "this host (in use by another program?); choose a free port")
    assert squeue_ids() == before


def test_jobs_failing_at_start_stop_the_start_with_their_last_words(slurm_cluster, tmp_path, monkeypatch, capsys):
    """A broken prologue (a typo in the CMSSW set-up, say): every job ends before a worker
    exists; each is reported with its last stderr line and replaced up to max_replacements,
    then start() gives up quoting SLURM's state and the job's last words."""
    with pytest.raises(UserError) as err:
        start_from_timerc(tmp_path, monkeypatch, "jobs = 1\nmax_replacements = 1\n"
                          "prologue = echo 'cmsenv: command not found' >&2; exit 3\n")
    message = str(err.value)
    assert message.startswith("slurm: no Dask worker connected and 1 jobs already replaced "
                              "([slurm] max_replacements = 1): giving up; last: slurm job ")
    assert re.search(r"ended \(FAILED[^)]*\) before its Dask worker connected: cmsenv: command not found$", message)
    printed = capsys.readouterr().out
    assert re.search(r"^BXRun: slurm job \d+ \(\S+\) ended \(FAILED[^)]*\) before its Dask worker connected: "
                     r"cmsenv: command not found; replaced \(1/1\); see " + re.escape(str(tmp_path / "prod" / "logs")),
                     printed, re.M), printed


def test_job_dying_before_its_worker_connects_is_reported_and_replaced(slurm_cluster, tmp_path, monkeypatch,
                                                                       capsys):
    """dask-jobqueue #643: of two jobs, the prologue makes exactly one exit before its worker
    starts (mkdir is atomic). supervise() reports it with SLURM's state and submits a
    replacement, so the cluster gets back to two workers."""
    marker = tmp_path / "first-job-fails"
    running = start_from_timerc(tmp_path, monkeypatch,
                                f"jobs = 2\nprologue = mkdir {marker} 2>/dev/null && exit 3 || true\n")
    try:
        notices = wait_until(lambda: reported(running, capsys, []), 30, "a notice about the failed job")
        assert len(notices) == 1
        assert "before its Dask worker connected" in notices[0] and "; replaced (1/10);" in notices[0]
        assert "ended (FAILED" in notices[0] and ".err" in notices[0]
        with Client(running.cluster) as client:
            client.wait_for_workers(2, timeout=60)
        rows = running.batch_jobs()
        assert len({r.job_id for r in rows}) == 3  # the two first jobs and one replacement
        assert sum(r.state == "RUNNING" for r in rows) == 2
        assert problems(running.supervise()) == []  # reported once
    finally:
        running.close()


def test_replacement_limit(slurm_cluster, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "first-job-fails"
    running = start_from_timerc(tmp_path, monkeypatch, f"jobs = 2\nmax_replacements = 0\n"
                                f"prologue = mkdir {marker} 2>/dev/null && exit 3 || true\n")
    try:
        notices = wait_until(lambda: reported(running, capsys, []), 30, "a notice about the failed job")
        assert "not replaced: 0 jobs already replaced ([slurm] max_replacements = 0)" in notices[0]
        time.sleep(3)
        assert sum(r.state in ("PENDING", "RUNNING") for r in running.batch_jobs()) == 1
    finally:
        running.close()


def test_cancelled_worker_job_reported_and_refilled(slurm_cluster, tmp_path, monkeypatch):
    """scancel of a job whose worker runs a task: Dask reruns the task on the other worker,
    supervise() says what happened, and the fixed-size cluster gets its second job back."""
    running = start_from_timerc(tmp_path, monkeypatch, "jobs = 2\n")
    try:
        with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}), \
                Client(running.cluster) as client:
            client.wait_for_workers(2, timeout=60)
            future = client.submit(lambda: (time.sleep(4), job_of_this_process())[1], pure=False)
            where = wait_until(lambda: [w for w, keys in client.processing().items() if keys], 20,
                               "the task to start")
            name = client.scheduler_info()["workers"][where[0]]["name"]
            victim = next(r.job_id for r in running.batch_jobs() if r.worker == name)
            subprocess.run(["scancel", victim], check=True)
            job, _ = future.result(timeout=60)
            assert job and job != victim
            notices = []
            wait_until(lambda: notices.extend(running.supervise()) or any("CANCELLED" in n for n in notices),
                       30, "a notice about the cancelled job")
            assert any(f"slurm job {victim}" in n and "CANCELLED" in n and "while its worker was connected" in n
                       for n in notices)
            # the engine would ask why the worker died: SLURM's CANCELLED adds nothing to "lost"
            assert running._job_of_address[where[0]] == victim
            assert running.fate_of_worker(where[0]) is None and running.fate_of_worker("tls://10.9.9.9:1") is None

            def refilled():
                notices.extend(running.supervise())
                return len(client.scheduler_info()["workers"]) == 2

            wait_until(refilled, 60, "a replacement worker")
            assert any("to replace lost worker(s)" in n for n in notices)
    finally:
        running.close()


def test_scheduler_interface_is_where_workers_connect(slurm_cluster, tmp_path, monkeypatch):
    """Multi-homed login nodes: the scheduler listens on (and advertises) the interface given."""
    running = start_from_timerc(tmp_path, monkeypatch, "jobs = 1\nscheduler_interface = lo\n")
    try:
        assert running.cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert running.cluster.scheduler_address in running.cluster.job_script()
        with Client(running.cluster) as client:
            client.wait_for_workers(1, timeout=60)
            (worker,) = client.scheduler_info()["workers"]
        assert worker.startswith("tls://")
    finally:
        running.close()


def test_queued_jobs_are_shown_with_slurms_pending_reason(slurm_cluster, tmp_path, monkeypatch):
    """A job SLURM will not start yet (here: not before 10 minutes from now) is not an error:
    start() returns after a short grace and batch_jobs() shows why the job waits."""
    t0 = time.monotonic()
    running = start_from_timerc(tmp_path, monkeypatch, "jobs = 1\njob_extra_directives = --begin=now+600\n")
    try:
        assert time.monotonic() - t0 < 40
        (row,) = running.batch_jobs()
        assert (row.state, row.reason, row.worker) == ("PENDING", "BeginTime", "")
        assert row.job_id in squeue_ids()
        assert problems(running.supervise()) == []  # waiting in the queue is not a failure
    finally:
        running.close()


def test_held_jobs_are_replaced_then_given_up(slurm_cluster, tmp_path, monkeypatch, capsys):
    """Jobs SLURM holds (here submitted with --hold, as 'scontrol hold' or an administrator
    would leave them) never start: each is reported as held with SLURM's reason and replaced
    up to max_replacements, then start() gives up naming the cause; none is left queued."""
    before = squeue_ids()
    with pytest.raises(UserError) as err:
        start_from_timerc(tmp_path, monkeypatch, "jobs = 1\nmax_replacements = 1\njob_extra_directives = --hold\n")
    printed = capsys.readouterr().out
    assert re.search(r"^BXRun: slurm job \d+ \(\S+\) is held: JobHeldUser; removed, replaced \(1/1\)$", printed, re.M), printed
    assert re.search(r"^BXRun: slurm job \d+ \(\S+\) is held: JobHeldUser; left held", printed, re.M), printed
    assert re.fullmatch(r"slurm: no Dask worker connected and 1 jobs already replaced \(\[slurm\] max_replacements "
                        r"= 1\): giving up; last: slurm job \d+ \(\S+\) is held: JobHeldUser", str(err.value))
    wait_until(lambda: not (squeue_ids() - before), 30, "the held jobs cancelled")


def test_sacct_without_accounting_answers_nothing(slurm_cluster):
    """This cluster has no accounting (AccountingStorageType=accounting_storage/none, as many
    small sites): sacct refuses ("Slurm accounting storage is disabled"), and the backend
    then knows nothing more of a job squeue forgot, instead of failing its supervision."""
    done = subprocess.run(["sacct", "--jobs=1"], capture_output=True, text=True)
    assert done.returncode != 0 and "accounting storage is disabled" in done.stderr.lower()
    from timecal_backend_slurm import slurmcli

    assert slurmcli.sacct(["1", "2"]) == {}
