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
from timecal_core.config import load_timerc
from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest

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
    jobs = {m[1]: m[2] for n in history if (m := re.match(r"slurm: slurm job (\d+) runs worker (\S+)$", n))}
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
        assert running.cluster.scheduler_address.endswith(f":{port}")
        assert f"tls://{HOST_ADDR}:{port}" in running.cluster.job_script()
        with Client(running.cluster) as client:
            client.wait_for_workers(1, timeout=60)
            seen = client.submit(where_am_i, pure=False).result(timeout=60)
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
