"""A dask-gateway cluster, watched through what the gateway's public API exposes.

The batch backends see every job in the queue; a gateway shows much less. Its API reports
the *cluster's* status (pending, running, stopping, stopped, failed) but not its workers:
which are still starting, why one failed to start or why it died. What the scheduler sees
(the workers that connect and leave) is what this backend reports, and the gateway itself
replaces lost workers of a fixed-size cluster and gives up on a cluster whose workers keep
failing to start (it then marks the cluster FAILED), so those two states are watched.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import warnings
from pathlib import Path

from timecal_core.contract.errors import UserError
from timecal_core.contract.running_cluster import BatchJob, RunningCluster

from .connect import certificate_error, gateway_errors
from .settings import SECTION, GatewaySettings

#: Where a production keeps the name of the cluster it started: a driver killed with -9
#: cannot shut its cluster down, so the next driver of the same production finds it here.
RECORD = ".gateway-cluster"
ACTIVE = ("PENDING", "RUNNING")
#: Closed clients kept until the interpreter exits: dask-gateway's ``__del__`` closes a
#: ``Gateway`` again, which with distributed >= 2023.6 raises (its loop runner has stopped)
#: and prints "Exception ignored in Gateway.__del__"; at exit it skips that second close.
CLOSED_CLIENTS: list = []
#: A file the first worker must see (:func:`probe_workers`).
PROBE = ".gateway-probe"


def read_record(production_dir: Path) -> dict:
    try:
        record = json.loads((production_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(production_dir: Path, record: dict) -> None:
    production_dir.mkdir(parents=True, exist_ok=True)
    tmp = production_dir / f"{RECORD}.{os.getpid()}"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(record, f)
    os.replace(tmp, production_dir / RECORD)


def forget_record(production_dir: Path, name: str) -> None:
    if read_record(production_dir).get("name") == name:
        (production_dir / RECORD).unlink(missing_ok=True)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def probe_scheduler(client) -> str | None:
    """The timecal-core version of the gateway's scheduler (the engine runs small functions
    of timecal-core there), None without it. The function travels by value."""

    def probe() -> str | None:
        from importlib import metadata

        try:
            return metadata.version("timecal-core")
        except metadata.PackageNotFoundError:
            return None

    return client.run_on_scheduler(probe)


def probe_workers(client, production_dir: Path) -> tuple[str, str | None, bool]:
    """Ask one worker whether it sees a file just written into this production (the same
    directory, not one of the same name elsewhere) and which timecal-core it has. The
    function travels by value (nested): the workers need timecal-core, not this plugin."""

    def probe(path: str, token: str) -> dict:
        from importlib import metadata

        try:
            version = metadata.version("timecal-core")
        except metadata.PackageNotFoundError:
            version = None
        try:
            with open(path) as f:
                sees = f.read() == token
        except OSError:
            sees = False
        return {"version": version, "sees": sees}

    token = secrets.token_hex(16)
    path = production_dir / f"{PROBE}.{os.getpid()}"
    production_dir.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(token)
    try:
        workers = list(client.scheduler_info().get("workers", {}))
        answers = client.run(probe, str(path), token, workers=workers[:1])
    finally:
        path.unlink(missing_ok=True)
    (worker, answer), = answers.items()
    return worker, answer["version"], answer["sees"]


class GatewayRunningCluster(RunningCluster):
    """``cluster`` is a ``dask_gateway.GatewayCluster``; ``gateway`` the ``Gateway`` client
    that asks about it."""

    def __init__(self, cluster, gateway, settings: GatewaySettings, address: str, production_dir: Path):
        super().__init__(cluster, "gateway", security=cluster.security)
        self.gateway = gateway
        self.settings = settings
        self.address = address
        self.production_dir = production_dir
        self.name = cluster.name
        self.keep = settings.keep
        self._requested: int | None = None
        self._connected: dict[str, tuple[str, float]] = {}  # worker name -> (address, since)
        self._left: dict[str, tuple[str, float]] = {}  # worker name -> (address, when)
        self._lost: set[str] = set()  # addresses of workers known to have left
        self._unreplaced = 0  # losses not followed by a new worker yet
        self._waiting_since = time.time()  # since when fewer workers than requested are connected
        self._said_waiting = False
        self._unreported: list[str] = []
        self._silent_since: float | None = None  # since when the gateway does not answer
        self.gone = ""

    # ----------------------------------------------------------------- what the gateway says
    def _errors(self, doing: str):
        return gateway_errors(self.address, self.settings, doing)

    def status(self) -> str:
        """The cluster's status as the gateway names it; UNKNOWN when the gateway no longer
        knows it (HTTP 404: restarted with its clusters gone, or cleaned up)."""
        with self._errors(f"asking about cluster {self.name}"):
            try:
                return self.gateway.get_cluster(self.name).status.name
            except ValueError as exc:
                if certificate_error(exc):
                    raise
                return "UNKNOWN"

    def _workers(self) -> dict[str, str]:
        """worker name -> scheduler address, from the scheduler's own list that the
        GatewayCluster keeps (updated on dask-gateway's event loop: copied with care)."""
        for _ in range(5):
            try:
                info = dict(self.cluster.scheduler_info.get("workers", {}))
                return {str(w.get("name", a)): a for a, w in info.items()}
            except RuntimeError:  # changed while being copied
                time.sleep(0.01)
        return {}

    def describe_security(self) -> str:
        return (f"TLS to the scheduler through the gateway's proxy, with the certificate the gateway issued "
                f"for cluster {self.name} (dask-gateway's own; timecal adds none)")

    def requested(self) -> int | None:
        return self._requested

    def announce(self, text: str) -> None:
        self._unreported.append(text)

    # ----------------------------------------------------------------- scaling
    def scale(self, n: int) -> None:
        self._requested = n
        self._waiting_since, self._said_waiting = time.time(), False
        with self._errors(f"scaling cluster {self.name} to {n} workers"), \
                warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            self.cluster.scale(n)
        for warning in said:  # e.g. over the cluster's limit: the gateway scales to the limit
            self.announce(f"the gateway says: {warning.message}")

    def adapt(self, minimum: int, maximum: int) -> None:
        self._requested = None
        with self._errors(f"making cluster {self.name} adaptive"):
            self.cluster.adapt(minimum=minimum, maximum=maximum)

    def retire(self, addresses: list[str]) -> None:
        """The gateway's API cannot name the workers to stop: it lowers the count and its
        scheduler retires the idlest workers (``Scheduler.workers_to_close``)."""
        self.scale(max(len(self._workers()) - len(addresses), 0))

    # ----------------------------------------------------------------- supervision
    def await_first_worker(self, poll: float = 1.0) -> None:
        """Return once a worker connects; a cluster the gateway fails or stops first, or no
        worker within ``connect_timeout``, is a UserError saying so."""
        timeout = self.settings.connect_timeout
        started = time.monotonic()
        while not self._workers():
            status = self.status()
            if status == "STOPPING":  # on its way to STOPPED or FAILED: which one says why
                time.sleep(poll)
                continue
            if status == "FAILED":
                raise UserError(f"the gateway marked cluster {self.name} FAILED before any worker connected: "
                                f"its workers failed to start (the gateway does not say why; check [{SECTION}] "
                                f"image and options, or ask the facility for the gateway's log)")
            if status not in ACTIVE:
                raise UserError(f"gateway cluster {self.name} was {status} before any worker connected (by its "
                                f"idle timeout, an administrator or another client of yours)")
            if time.monotonic() - started > timeout:
                raise UserError(f"no worker of gateway cluster {self.name} connected within {timeout:.0f} s "
                                f"(cluster {status}; the gateway does not say why: the facility's quota or a "
                                f"busy pool, or workers that cannot start); raise [{SECTION}] connect_timeout "
                                f"to wait longer")
            time.sleep(poll)

    def check_workers(self, client) -> None:
        """The scheduler and the workers must have timecal-core (the engine runs its code on
        both) and the workers must see this production's directory (they write the results there)."""
        from importlib import metadata

        if probe_scheduler(client) is None:
            raise UserError(f"the gateway's scheduler has no timecal-core: it runs the facility's image, which must "
                            f"have timecal installed; set [{SECTION}] image (or the facility's scheduler options)")
        worker, version, sees = probe_workers(client, self.production_dir)
        if version is None:
            raise UserError(f"the gateway's workers have no timecal-core (asked worker {worker}): their software "
                            f"environment must have timecal and the script plugins installed; set [{SECTION}] "
                            f"image (or environment) to one that has")
        if not sees:
            raise UserError(f"the gateway's workers do not see the production directory {self.production_dir} "
                            f"(asked worker {worker}): they write the results there; put the production on a "
                            f"filesystem the facility mounts on its workers at the same path ([paths] production, -o)")
        mine = metadata.version("timecal-core")
        if version != mine:
            self.announce(f"the workers run timecal-core {version}, this driver {mine}: "
                          f"if tasks fail oddly, align the image with this installation")

    def _status_or_silence(self, notices: list[str]) -> str | None:
        """The cluster's status, or None while the gateway does not answer; once it has not
        answered for ``connect_timeout`` seconds the cluster counts as gone."""
        try:
            status = self.status()
        except UserError as exc:
            now = time.monotonic()
            if self._silent_since is None:
                self._silent_since = now
                notices.append(f"{exc}; asking again at every interval")
            elif now - self._silent_since > self.settings.connect_timeout:
                self.gone = (f"no word from the gateway about cluster {self.name} for {now - self._silent_since:.0f} s "
                             f"([{SECTION}] connect_timeout); last: {exc}")
            return None
        if self._silent_since is not None:
            self._silent_since = None
            notices.append(f"the gateway at {self.address} answers again")
        return status

    def supervise(self) -> list[str]:
        notices, self._unreported = self._unreported, []
        if self.gone:
            return notices
        status = self._status_or_silence(notices)
        if status is None:
            return notices
        if status == "UNKNOWN":
            self.gone = f"the gateway no longer knows cluster {self.name} (restarted without it, or cleaned up)"
        elif status == "FAILED":
            self.gone = (f"gateway cluster {self.name} failed (the gateway lost its scheduler or gave up on its "
                         f"workers; it does not say which)")
        elif status not in ACTIVE:
            self.gone = (f"gateway cluster {self.name} was stopped ({status}: by its idle timeout, an "
                         f"administrator or another client of yours; the gateway does not say which)")
        if self.gone:  # the driver stops with this line
            return notices
        now = time.time()
        current = self._workers()
        for name in [n for n in self._connected if n not in current]:
            address, _ = self._connected.pop(name)
            self._left[name] = (address, now)
            if address not in self._lost:
                notices.append(self._left_line(name, address))
        for name, address in current.items():
            if name not in self._connected:
                self._connected[name] = (address, now)
                replacement = " (a replacement)" if self._unreplaced else ""
                self._unreplaced = max(self._unreplaced - 1, 0)
                notices.append(f"worker {name} connected from {address}{replacement}")
        if self._requested is None or len(current) >= self._requested:
            self._waiting_since, self._said_waiting = now, False
        elif not self._said_waiting and now - self._waiting_since > self.settings.connect_timeout:
            self._said_waiting = True
            notices.append(f"{self._requested - len(current)} of {self._requested} requested workers have not "
                           f"connected for {now - self._waiting_since:.0f} s; the gateway does not say why "
                           f"(quota, a busy facility, workers that cannot start)")
        return notices

    def _left_line(self, name: str, address: str) -> str:
        self._lost.add(address)
        self._unreplaced += 1
        then = ("the gateway starts another to keep the cluster at its size" if self._requested
                else "adaptive scaling decides whether another starts")
        return (f"worker {name} ({address}) left the scheduler; the gateway does not say why "
                f"(killed, out of memory, node lost); {then}")

    def fate_of_worker(self, address: str) -> tuple[str, str] | None:
        """Asked by the engine about a worker that died with a task. The gateway cannot say
        why (its API lists no workers): the loss is reported once, also for a worker that
        came and went between two monitor intervals, and the task's cause stays ``node``."""
        if address not in self._lost:
            name = next((n for n, (a, _) in {**self._left, **self._connected}.items() if a == address), "")
            self.announce(self._left_line(name or "?", address))
        return None

    def batch_jobs(self) -> list[BatchJob]:
        """The workers as the scheduler knows them, those that left, and the requested ones
        not connected yet (the gateway does not list its workers, nor why one waits)."""
        now = time.time()
        current = self._workers()
        jobs = [BatchJob(job_id=name, state="connected", worker=address,
                         runtime=_clock(now - self._connected.get(name, (address, now))[1]))
                for name, address in sorted(current.items())]
        jobs += [BatchJob(job_id=name, state="left", reason="the gateway does not say why", worker=address)
                 for name, (address, _) in sorted(self._left.items(), key=lambda kv: kv[1][1])[-20:]
                 if name not in current]
        missing = (self._requested or 0) - len(current)
        jobs += [BatchJob(job_id="-", state="requested", reason="not connected yet; the gateway does not say why")
                 for _ in range(max(missing, 0))]
        return jobs

    # ----------------------------------------------------------------- the end
    def close(self) -> None:
        """Close the connection; shut the cluster down unless it is to be kept."""
        try:
            self.cluster.close(shutdown=False)
        finally:
            try:
                if self.keep:
                    recorded = read_record(self.production_dir).get("name") == self.name
                    print(f"BXRun: gateway cluster {self.name} left running ([{SECTION}] keep = yes); "
                          + ("the next run of this production reuses it, others " if recorded else "reuse it ")
                          + f"with [{SECTION}] cluster = {self.name}")
                else:
                    self.shutdown()
            finally:
                self.gateway.close()
                CLOSED_CLIENTS.append((self.cluster, self.gateway))

    def shutdown(self) -> None:
        try:
            with self._errors(f"stopping cluster {self.name}"):
                self.gateway.stop_cluster(self.name)
        except UserError as exc:
            print(f"BXRun: warning: {exc}; the cluster may keep running until the gateway's idle timeout",
                  flush=True)
            return
        forget_record(self.production_dir, self.name)
