"""The control channel across processes: a driver serves :class:`~timecal_core.control.requests.Control`
on a Unix socket, a monitor in any terminal attaches to it.

Who may connect: only the production's owner, and a monitor talks only to a driver of its
own user. The socket lives in a directory of mode 0700 (``OUT/.control/``, or, when that
path is too long for a socket name, a fresh directory of an unpredictable name made for this
driver alone under ``$XDG_RUNTIME_DIR`` or ``/tmp``: :func:`timecal_core.trust.runtime_dir`),
the socket itself is 0600, and both ends check the other's credentials (SO_PEERCRED): the
driver serves only its own uid, a monitor (``timecal attach``, ``timecal stop``) refuses a
socket served by any other uid before sending a word. There is no TCP port: nobody else on a
shared login node can reach it, and nobody else can stand in for the driver.

The protocol is one JSON object per line each way: ``{"op": ..., "args": {...}}`` answered
by ``{"ok": answer}`` or ``{"error": "one line"}``. A dead driver is a closed connection:
the monitor says so; a dead monitor is a closed connection: the driver forgets it.

``OUT/.control/driver.json`` records the driver (host, PID, its start time, the socket, the
last sign of life, refreshed at every heartbeat) so that anything looking at a production
can tell a live driver from a dead one, and so that a monitor finds the socket wherever it
is (it is never guessed from the production's path).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import threading
import time
from pathlib import Path
from typing import Any

from ..contract.trust import (MAX_SOCKET_PATH, checked_dir, private_dir, runtime_dir, user_name,
                              write_atomically)
from .requests import ControlError

CONTROL_DIR = ".control"
RECORD = "driver.json"
SOCKET = "driver.sock"
TIMEOUT = 30.0


def control_dir(production_dir: Path) -> Path:
    return Path(production_dir) / CONTROL_DIR


def check_socket_place(production_dir: Path) -> None:
    """Before anything is written: when the driver's socket will not fit inside the
    production, the runtime directory it will go to must be trustworthy (a
    ``$XDG_RUNTIME_DIR`` of another user, or open to others, is refused now, in one line)."""
    inside = Path(production_dir).resolve() / CONTROL_DIR / SOCKET
    if len(str(inside)) > MAX_SOCKET_PATH and os.environ.get("XDG_RUNTIME_DIR"):
        checked_dir(os.environ["XDG_RUNTIME_DIR"], private=True, tighten=False)


def socket_path(production_dir: Path) -> Path:
    """Inside the production's private ``.control`` when the path fits in a socket address,
    else in a new private runtime directory of this driver (the record names it)."""
    inside = private_dir(control_dir(production_dir)).resolve() / SOCKET
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    return runtime_dir("driver") / SOCKET


# --------------------------------------------------------------------------- the record
def read_record(production_dir: Path) -> dict | None:
    """The driver's record; None if there is none (or ``.control``/``driver.json`` is a
    symlink, which timecal never makes)."""
    try:
        folder = os.open(control_dir(production_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(RECORD, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
        with os.fdopen(fd, "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None
    finally:
        os.close(folder)


def write_record(production_dir: Path, record: dict) -> None:
    folder = private_dir(control_dir(production_dir))
    write_atomically(folder / RECORD, json.dumps(record, indent=1), mode=0o600)


def driver_alive(record: dict | None) -> bool:
    """Is the recorded driver running? Checked by PID and start time on its own host; from
    another host only its heartbeat can tell (three missed intervals: presumed dead)."""
    from ..run.lock import _alive

    if not record or record.get("stopped"):
        return False
    if record.get("host") == socket.gethostname():
        return _alive(int(record["pid"]), record.get("process_start"))
    interval = float(record.get("interval", 60))
    return time.time() - float(record.get("heartbeat", 0)) < 3 * interval + 30


def describe_driver(record: dict | None) -> str:
    if not record:
        return "no driver has run here yet"
    last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("heartbeat", 0)))
    where = f"host {record.get('host')}, PID {record.get('pid')}"
    if driver_alive(record):
        return f"driver running ({where}), last sign of life {last}"
    if record.get("stopped"):
        return f"driver stopped ({record['stopped']}) at {last}"
    return f"driver dead ({where}): its last sign of life was at {last}"


# --------------------------------------------------------------------------- server
def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket, as the kernel
    recorded them when it connected (or bound, for the listening end)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: ControlServer = self.server.owner  # type: ignore[attr-defined]
        _pid, uid, _gid = peer_credentials(self.request)
        if uid != os.getuid():
            return  # not the owner: closed without a word
        server.handlers.add(self)  # set operations are atomic: no lock needed
        try:
            self._serve(server)
        finally:
            server.handlers.discard(self)

    def _serve(self, server: ControlServer) -> None:
        for line in self.rfile:
            try:
                message = json.loads(line)
                answer = {"ok": server.control.request(message["op"], **message.get("args", {}))}
            except ControlError as exc:
                answer = {"error": str(exc)}
            except Exception as exc:  # a bug must not kill the driver: tell the monitor
                answer = {"error": f"internal error in the driver: {type(exc).__name__}: {exc}"}
            try:
                self.wfile.write((json.dumps(answer, default=str) + "\n").encode())
                self.wfile.flush()
            except OSError:
                return


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ControlServer:
    """Serves a Control on the production's socket from a background thread."""

    def __init__(self, control, production_dir: Path):
        self.control = control
        self.path = socket_path(production_dir)  # in a checked 0700 directory of ours
        self._runtime = self.path.parent != control_dir(production_dir).resolve()
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # left by a killed driver; we hold the production lock
        old = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), _Handler)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._server.owner = self  # type: ignore[attr-defined]
        self.handlers: set = set()  # one per monitor attached now
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="timecal-control")
        self._thread.start()

    @property
    def connections(self) -> int:
        return len(self.handlers)

    def close(self, linger: float = 0.0) -> None:
        """Stop serving; with ``linger``, first give attached monitors that long to read
        what was published last and leave by themselves."""
        deadline = time.monotonic() + linger
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.1)
        self._server.shutdown()
        self._server.server_close()
        try:
            self.path.unlink()
            if self._runtime:
                self.path.parent.rmdir()  # made for this driver alone
        except OSError:
            pass


# --------------------------------------------------------------------------- client
class SocketChannel:
    """A monitor's channel to a driver in another process."""

    def __init__(self, path: Path | str, timeout: float = TIMEOUT):
        self.path = str(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._file = None
        #: The uid and PID of the process serving the socket, checked at every connection.
        self.peer_uid: int | None = None
        self.peer_pid: int | None = None
        self._connect()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            pid, uid, _gid = peer_credentials(sock)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot reach the driver at {self.path}: {exc.strerror or exc}") from None
        if uid != os.getuid():  # not our driver: another user bound this socket
            sock.close()
            raise ControlError(f"{self.path}: the process serving this socket (PID {pid}) runs as "
                               f"{user_name(uid)}, not as you: it is not your driver; nothing was "
                               f"sent to it")
        self.peer_uid, self.peer_pid = uid, pid
        self._sock, self._file = sock, sock.makefile("rwb")

    def request(self, op: str, **args: Any) -> dict:
        with self._lock:
            for attempt in (1, 2):  # one reconnection: the driver may have dropped an idle line
                try:
                    if self._sock is None:
                        self._connect()
                    self._file.write((json.dumps({"op": op, "args": args}) + "\n").encode())
                    self._file.flush()
                    line = self._file.readline()
                    if not line:
                        raise ConnectionResetError("the driver closed the connection")
                    break
                except (OSError, ValueError) as exc:
                    self.close()
                    if attempt == 2 or isinstance(exc, socket.timeout):
                        raise ControlError(f"the driver does not answer ({exc}); it may have "
                                           "stopped: BXRun --status -o OUT tells") from None
        answer = json.loads(line)
        if "error" in answer:
            raise ControlError(answer["error"])
        return answer["ok"]

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = self._file = None
