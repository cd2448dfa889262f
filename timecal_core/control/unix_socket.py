"""The control channel across processes: a driver serves :class:`~timecal_core.control.requests.Control`
on a Unix socket, a monitor in any terminal attaches to it.

Who may connect: only the production's owner. The socket lives in a directory of mode 0700
(``OUT/.control/``, or under ``$XDG_RUNTIME_DIR`` when that path is too long for a socket
name), the socket itself is 0600, and every connection's peer credentials (SO_PEERCRED) are
checked against the driver's uid. There is no TCP port: nobody else on a shared login node
can reach it.

The protocol is one JSON object per line each way: ``{"op": ..., "args": {...}}`` answered
by ``{"ok": answer}`` or ``{"error": "one line"}``. A dead driver is a closed connection:
the monitor says so; a dead monitor is a closed connection: the driver forgets it.

``OUT/.control/driver.json`` records the driver (host, PID, its start time, the socket, the
last sign of life, refreshed at every heartbeat) so that anything looking at a production
can tell a live driver from a dead one.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import socketserver
import struct
import threading
import time
from pathlib import Path
from typing import Any

from .requests import ControlError

CONTROL_DIR = ".control"
RECORD = "driver.json"
SOCKET = "driver.sock"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
TIMEOUT = 30.0


def control_dir(production_dir: Path) -> Path:
    return Path(production_dir) / CONTROL_DIR


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def socket_path(production_dir: Path) -> Path:
    """Inside the production when the path fits in a socket address, else in a private
    runtime directory under a name derived from the production's path."""
    inside = control_dir(production_dir).resolve() / SOCKET
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/timecal-{os.getuid()}"
    digest = hashlib.sha1(str(Path(production_dir).resolve()).encode()).hexdigest()[:16]
    return Path(runtime) / "timecal" / f"{digest}.sock"


# --------------------------------------------------------------------------- the record
def read_record(production_dir: Path) -> dict | None:
    try:
        return json.loads((control_dir(production_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return None


def write_record(production_dir: Path, record: dict) -> None:
    folder = _private_dir(control_dir(production_dir))
    tmp = folder / f".{RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, folder / RECORD)


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
class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: ControlServer = self.server.owner  # type: ignore[attr-defined]
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
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
        self.path = socket_path(production_dir)
        _private_dir(self.path.parent)
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
        self._connect()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot reach the driver at {self.path}: {exc.strerror or exc}") from None
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
