"""One driver per production: a lock file in the output directory.

Two drivers on one output would submit the same tasks twice and fight over the ledger.
The lock is a file created with ``O_EXCL`` (atomic, also on NFS v3+) holding the host, the
PID and that process's start time; the start time tells a live holder from a recycled PID.
A lock whose holder is dead *on this host* is stale (a driver killed with SIGKILL leaves it
behind) and is taken over with a notice; a lock held from another host cannot be checked
from here, so the message names the host and PID and says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from ..contract.errors import UserError

LOCK_NAME = ".bxrun.lock"


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _zombie(pid: int) -> bool:
    """Dead but not yet reaped (a detached driver's parent may never wait for it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _zombie(pid):
        return False
    now_started = _process_start(pid)
    return started is None or now_started is None or now_started == started


class ProductionLock:
    """Context manager holding ``<production>/.bxrun.lock`` for the life of a driver."""

    def __init__(self, production_dir: Path | str):
        self.production_dir = Path(production_dir)
        self.path = self.production_dir / LOCK_NAME
        self._record: dict | None = None

    def _describe(self, holder: dict) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        return f"host {holder.get('host', '?')}, PID {holder.get('pid', '?')}, since {since}"

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written right now, or garbage: treated as held, unknown holder

    def _try_create(self) -> bool:
        record = {"host": socket.gethostname(), "pid": os.getpid(),
                  "started": _process_start(os.getpid()), "since": time.time(),
                  "argv": sys.argv}
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        self._record = record
        return True

    def acquire(self) -> None:
        self.production_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._try_create():
                return
            holder = self._read()
            if holder is None:
                continue  # released between our attempt and the read: try again
            if not holder:
                raise UserError(f"{self.path}: production locked by another BXRun (lock file "
                                f"unreadable); if no BXRun runs on {self.production_dir}, "
                                f"remove {self.path}")
            here = holder.get("host") == socket.gethostname()
            if here and holder.get("pid") == os.getpid():
                raise UserError(f"{self.path}: this process already holds the lock")
            if here and not _alive(int(holder.get("pid", -1)), holder.get("started")):
                self._take_over(holder)
                continue
            where = "" if here else (f"; if that process is gone (it runs on another host, "
                                     f"which cannot be checked from here), remove {self.path}")
            raise UserError(f"{self.production_dir}: another BXRun drives this production "
                            f"({self._describe(holder)}); wait for it, stop it, or use another "
                            f"-o{where}")
        raise UserError(f"{self.path}: could not take the production lock (contention); retry")

    def _take_over(self, holder: dict) -> None:
        """Move the stale file aside atomically: of two drivers racing for a stale lock,
        only one rename succeeds, and both then compete fairly with O_EXCL."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = self._read_file(aside)
        if moved.get("pid") != holder.get("pid") or moved.get("since") != holder.get("since"):
            # Another driver took the stale lock between our read and our rename: put its
            # fresh lock back (link fails if yet another one exists) and compete again.
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        print(f"BXRun: notice: taking over a stale lock of {self.production_dir} left by a "
              f"driver that is no longer running ({self._describe(holder)})", file=sys.stderr)

    @staticmethod
    def _read_file(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def holder_status(self) -> str:
        """One line for ``--status``: who drives this production, if anyone."""
        holder = self._read()
        if holder is None:
            return "driver: none running"
        if not holder:
            return f"driver: lock file {self.path} unreadable"
        if holder.get("host") == socket.gethostname() and \
                not _alive(int(holder.get("pid", -1)), holder.get("started")):
            return (f"driver: none running (stale lock of PID {holder.get('pid')}, taken over by "
                    "the next run)")
        return f"driver: running ({self._describe(holder)})"

    def release(self) -> None:
        """Remove the lock only if it is still ours."""
        if self._record is None:
            return
        holder = self._read()
        if holder and holder.get("pid") == self._record["pid"] and \
                holder.get("since") == self._record["since"]:
            self.path.unlink(missing_ok=True)
        self._record = None

    def __enter__(self) -> ProductionLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
