"""``--dask slurm`` on a cluster of several nodes (tests/slurmnet/): a controller and three
compute nodes, each a network namespace with its own address and hostname, and the faults
such clusters have every day: a node that dies with its jobs, a network that splits, a
driver killed and started again, a job over its memory.

BXRun runs on this host, the login node: it has the cluster network (``BRIDGE``, address
``HOST_ADDR``) besides its own, and the nodes reach nothing but the cluster network, so the
workers connect only through the settings users of multi-homed login nodes give.
Every test starts a fresh cluster and removes it afterwards (tests/slurmnet/fixture.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from distributed import Client

from conftest import bxrun_path, write_timerc
from slurmnet.fixture import BRIDGE, HOST_ADDR, NODE_ADDRS, NODE_IF, NODES, PARTITION, slurmnet, wait_until  # noqa: F401
from timecal_backend_slurm.plugin import start
from timecal_core.config.timerc import load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest

pytestmark = [pytest.mark.slurm, pytest.mark.slurmnet]
cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: How the login node's users reach the nodes: the scheduler on the cluster network, the
#: workers on the nodes' interface (which this host does not have).
NETWORK = f"scheduler_interface = {BRIDGE}\ninterface = {NODE_IF}\n"
JOB = f"partition = {PARTITION}\nmemory = 500MB\nwalltime = 00:15:00\n"


# ------------------------------------------------------------------------- helpers
def timerc_env(tmp_path: Path, slurm_lines: str, extra: str = "") -> dict[str, str]:
    timerc = write_timerc(tmp_path / "config", "[slurm]\n" + JOB + slurm_lines + extra)
    return {**os.environ, "TIMECAL_CONFIG": str(timerc)}


def bxrun(env: dict, *args) -> subprocess.Popen:
    """BXRun in the background, its output (what the monitor prints) on a pipe."""
    return subprocess.Popen([bxrun_path(), *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


@contextlib.contextmanager
def killed_on_failure(proc: subprocess.Popen):
    """If the test fails while BXRun runs, BXRun is killed and what it printed is shown."""
    try:
        yield proc
    except BaseException as exc:
        if proc.poll() is None:
            proc.kill()
        printed = proc.communicate(timeout=30)[0] if proc.stdout and not proc.stdout.closed else ""
        raise AssertionError(f"{exc}\n--- BXRun printed:\n{printed}") from exc


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        raise AssertionError(f"BXRun did not finish within {timeout} s:\n{out}") from None
    return out


def sleeper_grid(tmp_path: Path, tasks: int, seconds: float, extra: str = "") -> Path:
    grid = tmp_path / "grid.yml"
    grid.write_text(f"index: [{', '.join(str(i) for i in range(1, tasks + 1))}]\nseconds: {seconds}\n{extra}")
    return grid


def query(out: Path, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{out / 'ledger.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchall()


def notes(out: Path) -> list[str]:
    """The production's own history: batch-system events, starts, exits."""
    return [d for (d,) in query(out, "SELECT detail FROM events WHERE task_id IS NULL ORDER BY id")]


def jobs_in(history: list[str]) -> dict[str, str]:
    """SLURM job id -> worker name, as supervision recorded them."""
    return {m[1]: m[2] for n in history if (m := re.match(r"slurm: slurm job (\d+) runs worker (\S+)$", n))}


def results_of(out: Path) -> dict[str, dict]:
    """Every result on disk: directory name -> its params.json."""
    return {p.name: json.loads((p / "params.json").read_text())
            for p in (out / "results").iterdir() if p.is_dir() and not p.name.startswith(".")}


def assert_each_result_once(out: Path, tasks: int) -> dict[str, dict]:
    """Every task done exactly once: one result directory each, the ledger agrees, no attempt
    directory left behind, and no task recorded done twice."""
    done = results_of(out)
    assert len(done) == tasks, sorted(done)
    assert len({r["task_id"] for r in done.values()}) == tasks
    states = dict(query(out, "SELECT state, COUNT(*) FROM tasks GROUP BY state"))
    assert states == {"done": tasks}, states
    assert not any((out / "results" / ".tmp").glob("*")), list((out / "results" / ".tmp").iterdir())
    dones = query(out, "SELECT task_id, COUNT(*) FROM attempts WHERE outcome = 'done' GROUP BY task_id")
    assert all(n == 1 for _, n in dones) and len(dones) == tasks, dones
    return done


def running_steps(out: Path) -> dict[str, int]:
    """Task directory -> pid of its running sleeper step (from the attempts' logs)."""
    found = {}
    for log in (out / "results" / ".tmp").glob("*/task.log"):
        for line in log.read_text().splitlines():
            if line.startswith("sleeper pid="):
                found[log.parent.name.rsplit(".", 1)[0]] = int(line.split()[1].split("=")[1])
    return {d: p for d, p in found.items() if os.path.exists(f"/proc/{p}")}


def slurm_job_of(pid: int) -> str:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"SLURM_JOB_ID="))


def where_am_i() -> dict:
    """Run on a worker: the node it runs on, as the job and the network see it."""
    return {"hostname": socket.gethostname(), "job": os.environ.get("SLURM_JOB_ID"),
            "nodelist": os.environ.get("SLURM_JOB_NODELIST")}


def start_in_process(tmp_path, monkeypatch, slurm_lines: str):
    path = write_timerc(tmp_path / "config", "[slurm]\n" + JOB + slurm_lines)
    monkeypatch.setenv("TIMECAL_CONFIG", str(path))
    return start(BackendRequest(settings=load_timerc().section("slurm"), output_dir=tmp_path / "prod"))


# ------------------------------------------------------------------------- the network
def test_workers_on_three_nodes_reach_the_login_node_on_its_cluster_interface(slurmnet, tmp_path):
    """scheduler_interface = the login node's cluster interface, interface = the nodes' one
    (absent on the login node): one job per node, each worker connects from its node's
    address, and every task runs on a compute node, under that node's hostname."""
    env = timerc_env(tmp_path, NETWORK + "jobs = 3\n")
    out = tmp_path / "prod"
    proc = bxrun(env, "--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 9, 2), "--dask", "slurm",
                 "-o", out, "--interval", "1")
    output = finish(proc, 240)
    assert proc.returncode == 0, output
    done = assert_each_result_once(out, 9)
    history = notes(out)
    jobs = jobs_in(history)
    assert len(jobs) == 3, history
    connected = {m[1]: m[3] for n in history
                 if (m := re.match(r"slurm: slurm job (\d+) \((\S+)\): worker \S+ connected from tls://([\d.]+):", n))}
    on_node = {job: row["nodes"] for job, row in slurmnet.jobs().items() if job in jobs}
    assert sorted(on_node.values()) == list(NODES), on_node  # SLURM put one job on each node
    for job, node in on_node.items():  # and each worker connected from that node's address
        assert connected[job] == NODE_ADDRS[node], (job, node, connected)
    assert {r["host"] for r in done.values()} <= set(NODES), {r["host"] for r in done.values()}
    assert {r["job_id"] for r in done.values()} <= set(jobs)


def test_contact_address_brings_workers_to_the_scheduler(slurmnet, tmp_path, monkeypatch):
    """contact_address (a tunnel, a NAT, a DNS alias of the login node): the scheduler listens
    on that port, the workers are told that address, whatever interface BXRun picks."""
    with socket.socket() as s:  # a port free on this host now
        s.bind((HOST_ADDR, 0))
        port = s.getsockname()[1]
    running = start_in_process(tmp_path, monkeypatch,
                               f"interface = {NODE_IF}\ncontact_address = tls://{HOST_ADDR}:{port}\njobs = 1\n")
    try:
        assert running.cluster.scheduler_address.endswith(f":{port}")  # listening on that port
        assert running.advertised_address == f"tls://{HOST_ADDR}:{port}"
        with Client(running.cluster) as client:
            client.wait_for_workers(1, timeout=60)
            # (a lambda: distributed pickles a module-level function by reference, and the
            # workers cannot import this test module)
            seen = client.submit(lambda: where_am_i(), pure=False).result(timeout=60)
            (worker,) = client.scheduler_info()["workers"]
        assert seen["hostname"] in NODES and seen["nodelist"] == seen["hostname"]
        assert worker.startswith(f"tls://{NODE_ADDRS[seen['hostname']]}:")
    finally:
        running.close()


def test_without_the_cluster_interface_the_start_fails_naming_the_address(slurmnet, tmp_path, monkeypatch):
    """The login node's default interface is not on the cluster network: the jobs run, their
    workers cannot reach the scheduler, and the start stops after connect_timeout saying
    which address was advertised and which settings to give."""
    with pytest.raises(UserError) as err:
        start_in_process(tmp_path, monkeypatch, "jobs = 1\nconnect_timeout = 20\n")
    message = str(err.value)
    assert "never reached the scheduler at tls://" in message
    assert "set [slurm] scheduler_interface (or contact_address)" in message
    advertised = re.search(r"at tls://([\d.]+):\d+ \(advertised", message)[1]
    assert advertised not in (HOST_ADDR, *NODE_ADDRS.values())
    job = re.search(r"slurm job (\d+)", message)[1]
    wait_until(lambda: slurmnet.jobs()[job]["state"] in ("CANCELLED", "COMPLETED"), 30, "its job removed")


# ------------------------------------------------------------------------- faults
def attempts_of(out: Path, dirname: str) -> list[tuple]:
    return query(out, "SELECT a.attempt, a.outcome, a.cause, a.reason, a.host, a.job_id FROM attempts a "
                      "JOIN tasks t USING (task_id) WHERE t.dirname = ? ORDER BY a.attempt", (dirname,))


def test_a_node_dies_with_its_jobs(slurmnet, tmp_path):
    """A compute node dies as in a power cut: its cable goes first (nothing it sends reaches
    anyone any more), then every process in it, slurmd included. SLURM marks it DOWN and its
    job NODE_FAIL; Dask loses the worker; the task is charged one attempt with cause ``node``
    and SLURM's words, rerun on a live node, and the lost job is replaced there."""
    slurmnet.set_slurmd_timeout(20)  # a site's 300 s would make the test wait 5 minutes
    env = timerc_env(tmp_path, NETWORK + "jobs = 3\n")
    out = tmp_path / "prod"
    proc = bxrun(env, "--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 6, 20), "--dask", "slurm",
                 "-o", out, "--interval", "1")
    with killed_on_failure(proc):
        steps = wait_until(lambda: len(running_steps(out)) == 3 and running_steps(out), 120, "three tasks running")
        dirname, pid = sorted(steps.items())[0]
        node, job = slurmnet.node_of_pid(pid), slurm_job_of(pid)
        assert node in NODES
        # the steps can start before the driver's next tick puts their jobs on record
        before = wait_until(lambda: len(jobs_in(notes(out))) >= 3 and set(jobs_in(notes(out))), 30,
                            "the three jobs on record")
        died = time.time()
        slurmnet.cut(node)
        killed = slurmnet.kill_node(node)
        assert pid in killed
        output = finish(proc, 360)
    (tmp_path / "bxrun.txt").write_text(output)
    assert proc.returncode == 0, output
    assert_each_result_once(out, 6)
    # SLURM's own account: the node DOWN, the job NODE_FAIL.
    assert slurmnet.node_states()[node].startswith("down"), slurmnet.node_states()
    assert slurmnet.jobs()[job]["state"] == "NODE_FAIL", slurmnet.jobs()[job]
    (first, second) = attempts_of(out, dirname)
    assert first[:3] == (1, "failed", "node") and first[5] == job, first
    assert second[:2] == (2, "done") and second[4] in set(NODES) - {node}, second
    history = notes(out)
    assert any(re.fullmatch(rf"slurm: slurm job {job} \(\S+\) ended \(NODE_FAIL[^)]*\) while its worker was "
                            r"connected; Dask reruns its tasks on the other workers", n) for n in history), history
    assert any(n.endswith("attempt 1: the SLURM job's node failed (NODE_FAIL)") for n in history), history
    # A replacement job was submitted, ran on a live node, and its worker connected from there.
    assert any(n == "slurm: slurm: submitting 1 job(s) to replace lost worker(s) " + worker
               for n in history for worker in [n.rsplit(" ", 1)[-1]]), history
    replacements = set(jobs_in(history)) - before
    assert len(replacements) == 1, (before, history)
    (replacement,) = replacements
    assert slurmnet.jobs()[replacement]["nodes"] in set(NODES) - {node}, slurmnet.jobs()
    assert any(re.match(rf"slurm: slurm job {replacement} \(\S+\): worker \S+ connected from tls://", n)
               for n in history), history
    hosts_after = query(out, "SELECT host FROM attempts WHERE start > ?", (died,))
    assert node not in {h for (h,) in hosts_after}


def test_the_network_of_a_node_is_cut_for_a_minute(slurmnet, tmp_path):
    """One node's cable is out for 60 s, then back. SLURM (SlurmdTimeout 300 s, a site's
    default) does not notice; Dask does. What happens, second by second, is written to
    timeline.txt and documented in the README ("What the batch backends watch for you"):
    nothing is lost or duplicated, and the worker of the cut node is, once back, either used
    again or retired with its job, its processes gone."""
    env = timerc_env(tmp_path, NETWORK + "jobs = 3\n")
    out = tmp_path / "prod"
    proc = bxrun(env, "--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 12, 20), "--dask", "slurm",
                 "-o", out, "--interval", "1")
    timeline: list[str] = []
    with killed_on_failure(proc):
        steps = wait_until(lambda: len(running_steps(out)) == 3 and running_steps(out), 120, "three tasks running")
        dirname, pid = sorted(steps.items())[0]
        node, job = slurmnet.node_of_pid(pid), slurm_job_of(pid)
        worker_pid = int(wait_until(lambda: next((m[1] for n in notes(out) if (m := re.match(
            rf"slurm: slurm job {job} \(\S+\): worker .* pid (\d+)$", n))), None), 30, "its worker on record"))
        t0 = time.time()
        seen = len(query(out, "SELECT id FROM events"))

        def look(what: str = "") -> None:
            history = [f"{t[:8] + ' ' if t else ''}{d}" for t, d in
                       query(out, "SELECT task_id, detail FROM events ORDER BY id")]
            nonlocal seen
            new, seen = history[seen:], len(history)
            row = slurmnet.jobs().get(job, {})
            timeline.append(f"{time.time() - t0:6.1f} s {what:9} worker {'alive' if os.path.exists(f'/proc/{worker_pid}') else 'gone '} "
                            f"job {row.get('state', '?'):10} node {slurmnet.node_states().get(node, '?'):6} "
                            + " | ".join(new))

        slurmnet.cut(node)
        look("cut")
        while time.time() - t0 < 60:
            time.sleep(2)
            look()
        slurmnet.restore(node)
        look("restored")
        # After the restore: the cut job's worker is retired with its job (SLURM's kill reaches
        # the node as it answers again), or it is back and serving.
        def settled() -> bool:
            time.sleep(2)
            look()
            responding = slurmnet.node_states()[node] in ("idle", "mix", "alloc")
            return responding and not os.path.exists(f"/proc/{worker_pid}")
        wait_until(settled, 240, f"{node} answering again and the cut job's worker gone", poll=0)
        output = finish(proc, 420)
    look("finished")
    (tmp_path / "timeline.txt").write_text(f"{node}: job {job}, worker pid {worker_pid}, task {dirname}\n"
                                           + "\n".join(timeline) + "\n")
    (tmp_path / "bxrun.txt").write_text(output)
    assert proc.returncode == 0, output
    assert_each_result_once(out, 12)
    assert slurmnet.jobs()[job]["state"] in ("CANCELLED", "COMPLETED"), slurmnet.jobs()[job]
    # Only slurmd is left on the node once BXRun closed its cluster.
    wait_until(lambda: {Path(f"/proc/{p}/comm").read_text().strip() for p in slurmnet.pids_on(node)
                        if os.path.exists(f"/proc/{p}")} <= {"slurmd"}, 60, f"the jobs on {node} gone")


def test_the_driver_is_killed_and_started_again(slurmnet, tmp_path):
    """SIGKILL of BXRun in the middle of a production whose jobs fill the cluster (one more
    waits in the queue), then the same command again: the new driver finds the jobs of the
    killed one that SLURM still runs or queues, removes them (their workers serve a scheduler
    that is gone), says so, and completes the production with its own; none is orphaned."""
    env = timerc_env(tmp_path, NETWORK + "jobs = 4\njob_extra_directives = --exclusive\n")
    out = tmp_path / "prod"
    args = ("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 8, 15), "--dask", "slurm", "-o", out,
            "--interval", "1")
    first = bxrun(env, *args)
    with killed_on_failure(first):
        wait_until(lambda: len(running_steps(out)) == 3, 120, "three tasks running")
        old = wait_until(lambda: len(jobs_in(notes(out))) == 4 and set(jobs_in(notes(out))), 30,
                         "the four jobs on record")
        states = {j: slurmnet.jobs()[j]["state"] for j in old}
        assert sorted(states.values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING"], states
        first.kill()
        first.communicate(timeout=30)
    second = bxrun(env, *args)
    with killed_on_failure(second):
        output = finish(second, 300)
    assert second.returncode == 0, output
    assert_each_result_once(out, 8)
    final = slurmnet.jobs()
    assert all(final[j]["state"] in ("CANCELLED", "COMPLETED", "FAILED") for j in old), {j: final[j] for j in old}
    pending = next(j for j, s in states.items() if s == "PENDING")
    assert final[pending]["state"] == "CANCELLED"
    assert re.search(rf"slurm job {pending} .*earlier driver.*PENDING.*removed", output), output
    for node in NODES:  # nothing of either driver's jobs is left on any node
        wait_until(lambda: {Path(f"/proc/{p}/comm").read_text().strip() for p in slurmnet.pids_on(node)
                            if os.path.exists(f"/proc/{p}")} <= {"slurmd"}, 60, f"the jobs on {node} gone")


def test_a_task_over_its_jobs_memory_is_oom_from_slurms_cgroup(slurmnet, tmp_path):
    """SLURM enforces --mem through task/cgroup (cgroup v1 memory controller here): a step
    filling 800 MiB in a 500 MB job is killed by the kernel within the job's memory cgroup,
    long before timecal's own watcher (the worker's limit) would: the attempt is ``oom``,
    retried per [retry] oom = 2, then failed for good; SLURM's own words (slurmstepd's, in
    the job's stderr) say the job's cgroup OOM-killed. The tasks within their memory are done
    once each."""
    if slurmnet.no_memory_limits:
        pytest.skip(f"SLURM cannot enforce memory here: {slurmnet.no_memory_limits}")
    env = timerc_env(tmp_path, NETWORK + "jobs = 2\n", "\n[retry]\noom = 2\n")
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3]\nallocate: [16, 800]\nseconds: 2\n")
    out = tmp_path / "prod"
    proc = bxrun(env, "--script", "sleeper", "--yaml", grid, "--dask", "slurm", "-o", out, "--interval", "1")
    output = finish(proc, 300)
    assert proc.returncode == 1, output  # tasks failed for good
    done = results_of(out)
    assert sorted(r["params"]["allocate"] for r in done.values()) == [16, 16, 16]
    failed = query(out, "SELECT task_id, state, attempts, cause FROM tasks WHERE state != 'done'")
    assert len(failed) == 3 and all(row[1:] == ("error", 2, "oom") for row in failed), failed
    reasons = {r for (r,) in query(out, "SELECT reason FROM attempts WHERE outcome = 'failed'")}
    assert reasons == {"step sleep out of memory (killed by the kernel at the job's limit of 477 MiB)"}, reasons
    # SLURM's own words, in the job's stderr (the worker log BXRun points to), as each job ended.
    oom_jobs = {j for (j,) in query(out, "SELECT DISTINCT job_id FROM attempts WHERE cause = 'oom'")}
    assert oom_jobs and oom_jobs <= set(jobs_in(notes(out))), oom_jobs
    for job in oom_jobs:
        assert re.search(rf"slurmstepd-tcnode\d: error: Detected \d+ oom-kill event\(s\) in StepId={job}\.batch",
                         (out / "logs" / f"timecal-{job}.err").read_text()), job
