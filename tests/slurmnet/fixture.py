"""The multi-node SLURM test cluster (start_cluster.sh / stop_cluster.sh beside this file),
and the faults the tests inflict on it.

A controller and three compute nodes, each a network namespace with its own address and
hostname on a private bridge; this host (where BXRun and its Dask scheduler run, the "login
node") has an address on that bridge too, ``HOST_ADDR`` on interface ``BRIDGE``, besides its
own network: a multi-homed login node. The nodes reach nothing but the bridge, so a worker
connects only if the scheduler listens and advertises where the nodes can reach it
(``[slurm] scheduler_interface``, ``interface``, ``contact_address``).

Every test gets a cluster started from nothing (about 2 s) and removed completely after it,
passed or failed (``stop_cluster.sh``: every process in its namespaces and cgroups, the
namespaces, the veth pairs, the bridge, the cgroups). ``make slurmnet-down`` removes the
leftovers of a run that could not clean up (a killed pytest). Root only; elsewhere skipped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BASE = Path(os.environ.get("TIMECAL_SLURMNET_BASE", "/tmp/timecal-slurmnet"))


def _settings() -> dict[str, str]:
    out = {}
    for line in (HERE / "cluster.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


ENV = _settings()
NODES = tuple(ENV["NODES"].split())
NODE_ADDRS = dict(zip(NODES, ENV["NODE_ADDRS"].split()))
HOST_ADDR, BRIDGE, NODE_IF, PARTITION = ENV["HOST_ADDR"], ENV["BRIDGE"], ENV["NODE_IF"], ENV["PARTITION"]


@dataclass
class SlurmNet:
    base: Path

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    @property
    def no_memory_limits(self) -> str:
        """Why SLURM does not enforce the jobs' --mem on this machine ("" where it does)."""
        try:
            return (self.base / "no-memory-limits").read_text().strip()
        except FileNotFoundError:
            return ""

    def run(self, *argv: str, check: bool = True) -> str:
        """A SLURM client command against this cluster; its stdout."""
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "SLURM_CONF": str(self.conf)})
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr}")
        return done.stdout

    # ---------------------------------------------------------------- SLURM's own view
    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job SLURM still lists (ended ones for MinJobAge = 10 min): id -> state,
        reason, node list."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%N")
        rows = {}
        for line in out.splitlines():
            job, state, reason, nodes = line.strip().split("|")
            rows[job] = {"state": state, "reason": reason, "nodes": nodes}
        return rows

    def node_states(self) -> dict[str, str]:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N|%t")
        return dict(line.strip().split("|") for line in out.splitlines())

    def set_slurmd_timeout(self, seconds: int) -> None:
        """How long the controller waits for a silent node before marking it DOWN (and its
        jobs NODE_FAIL): rewritten in slurm.conf and re-read by every daemon."""
        text = self.conf.read_text()
        lines = [f"SlurmdTimeout={seconds}" if ln.startswith("SlurmdTimeout=") else ln
                 for ln in text.splitlines()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.run("scontrol", "reconfigure")
        wait_until(lambda: f"SlurmdTimeout           = {seconds} sec" in self.run("scontrol", "show", "config"),
                   30, f"SlurmdTimeout = {seconds}")

    # ---------------------------------------------------------------- where things run
    @staticmethod
    def _netns_inode(name: str) -> int:
        return os.stat(f"/run/netns/{name}").st_ino

    def node_of_pid(self, pid: int) -> str | None:
        """The compute node a process runs on (its network namespace), None for this host."""
        try:
            own = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            return None
        return next((n for n in NODES if os.path.exists(f"/run/netns/{n}") and self._netns_inode(n) == own), None)

    def pids_on(self, node: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", node], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    # ---------------------------------------------------------------- faults
    def kill_node(self, node: str) -> list[int]:
        """The node dies: every process in its namespace (slurmd, slurmstepd, the jobs)
        gets SIGKILL at once, as a power cut would do; returns the pids killed."""
        killed: list[int] = []
        for _ in range(50):
            pids = self.pids_on(node)
            if not pids:
                return killed
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"processes of {node} survive SIGKILL: {self.pids_on(node)}")

    def cut(self, node: str) -> None:
        """Unplug the node's cable: its port on the bridge goes down; packets both ways are
        lost silently (the node keeps its address and routes, as behind a dead switch)."""
        subprocess.run(["ip", "link", "set", f"tcv-{node}", "down"], check=True)

    def restore(self, node: str) -> None:
        subprocess.run(["ip", "link", "set", f"tcv-{node}", "up"], check=True)


def wait_until(condition, timeout: float, what: str, poll: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stop() -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HERE / "stop_cluster.sh"), str(BASE)], capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def slurmnet(monkeypatch) -> SlurmNet:
    """A fresh multi-node cluster for one test; SLURM's commands of the test (and of the BXRun
    it starts) reach it through SLURM_CONF. Removed afterwards, whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("the multi-node SLURM cluster needs root (network namespaces, a bridge, cgroups, "
                    "slurmctld/slurmd)")
    started = subprocess.run(["bash", str(HERE / "start_cluster.sh"), str(BASE)], capture_output=True,
                             text=True, timeout=600)
    try:
        if started.returncode != 0:
            pytest.fail(f"tests/slurmnet/start_cluster.sh failed:\n{started.stdout}\n{started.stderr}")
        monkeypatch.setenv("SLURM_CONF", str(BASE / "slurm.conf"))
        yield SlurmNet(BASE)
    finally:
        stopped = _stop()
        leftovers = [n for n in (*NODES, ENV["CTL_HOST"]) if os.path.exists(f"/run/netns/{n}")]
        if stopped.returncode != 0 or leftovers:
            pytest.fail(f"tests/slurmnet/stop_cluster.sh left {leftovers}: {stopped.stderr}")
