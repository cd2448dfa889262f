"""The step server: one small process per worker process that starts every step of its tasks.

Why a server rather than ``subprocess`` from the task's thread:

- **Warm steps.** A step declared with ``Step(python="module:function")`` is run by forking
  this server, which imported ``module`` once (numpy, uproot and the plugin stay loaded), so
  a task no longer pays ~1 s of imports in a fresh interpreter. The child is still a separate
  process in its own session/process group, with its stdout/stderr on ``task.log``; its
  crash costs one attempt, not the worker. If ``module`` defines
  ``timecal_warm_prepare(argv)``, the server calls it before forking, so what it caches
  (e.g. a parsed input file) is inherited by every later task of this worker.
- **No orphans.** The server is single-threaded, so ``PR_SET_PDEATHSIG`` (which fires when
  the *forking thread* exits) is reliable here: every step, warm or exec'd, gets SIGKILL if
  the server dies. The server itself holds the read end of a pipe from the worker; when the
  worker process dies for any reason (SIGKILL, OOM, its nanny or the driver gone) the pipe
  reaches EOF and the server kills the process group of every running step before exiting.
  Plain commands (cmsRun, ``bash -c``) are exec'd from a forked child the same way.
- **Resources.** The server reaps its children with ``wait4`` and reports the exit status,
  CPU times and peak RSS of each step. It also samples the RSS of each step's whole
  process group a few times a second: the peak of a step that forks is the group's, and a
  step whose group exceeds the ``memory_limit`` of its request (the worker's: Dask's own
  limit only sees the worker process) is killed there and then and reported ``oom``.

Protocol: JSON lines. Worker -> server ``{"id", "cwd", "log", "argv", "python", "env",
"memory_limit"}``; server -> worker ``{"id", "event": "started", "pid"}`` then ``{"id",
"event": "exited", "status", "user", "sys", "maxrss_kib", "wall", "oom"}``. The worker kills a step by its process
group (the child's pid: it is a session leader).

``python -m timecal_core.run.step_server serve`` is the server; ``python -m timecal_core.run.step_server run
module:function ARGS...`` runs a python step cold (a fresh interpreter), the fallback when
warm steps are disabled with ``TIMECAL_WARM_STEPS=0``.
"""

from __future__ import annotations

import errno
import gc
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass

WARM_ENV = "TIMECAL_WARM_STEPS"  # "0": run python steps cold, in a fresh interpreter
PREPARE_HOOK = "timecal_warm_prepare"
PR_SET_PDEATHSIG = 1
SAMPLE_EVERY = 0.25  # seconds between two looks at the RSS of the running steps


def warm_enabled() -> bool:
    return os.environ.get(WARM_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def resolve(target: str):
    """``module:function`` -> the function (imports the module)."""
    module, _, function = target.partition(":")
    if not module or not function:
        raise ValueError(f"python step {target!r}: expected 'module:function'")
    return getattr(importlib.import_module(module), function)


def call_step_function(target: str, argv: list[str]) -> int:
    """Run a python step in this process; its return value (or SystemExit) is the exit code."""
    try:
        function = resolve(target)
        sys.argv = [target, *argv]
        code = function(list(argv))
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


# ---------------------------------------------------------------------- server side
def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent (the single-threaded server) exits."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux: the server's EOF handling still kills the group
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)


def _child(request: dict, server_pid: int, keep_out: list[int]) -> None:
    """In the forked child: become a session leader, wire the log, run or exec. Never returns."""
    code = 127
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent(server_pid)
        for fd in keep_out:
            os.close(fd)
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        env = request.get("env")
        if request.get("python"):
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            code = call_step_function(request["python"], request["argv"])
        else:
            argv = request["argv"]
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as subprocess does for programs
            try:
                if env is None:
                    os.execvp(argv[0], argv)
                os.execvpe(argv[0], argv, env)
            except OSError as exc:
                print(f"cannot start {argv[0]!r}: {exc}", flush=True)
                code = 127
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def _prepare(target: str, argv: list[str]) -> None:
    """Import the step's module here (once), and let it cache what later tasks reuse."""
    module = importlib.import_module(target.partition(":")[0])
    hook = getattr(module, PREPARE_HOOK, None)
    if hook is not None:
        hook(list(argv))


def serve() -> int:
    """The server loop (see the module docstring). Single-threaded by design."""
    chan_in, chan_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray prints of prepare hooks go to the worker's stderr, not the channel
    os.close(null)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the worker's pipe closing ends the server
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    me = os.getpid()
    running: dict[int, tuple[int, float]] = {}  # pid -> (request id, start)
    limits: dict[int, int] = {}  # pid -> memory limit of its process group, bytes
    peaks: dict[int, int] = {}  # pid -> largest RSS of its group seen, bytes
    killed: dict[int, tuple[int, int]] = {}  # pid -> (rss, limit) when killed for memory
    pending = b""

    def send(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(chan_out, data):]

    def reap() -> None:
        while running:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            rid, start = running.pop(pid, (None, 0.0))
            limits.pop(pid, None)
            peak = peaks.pop(pid, 0) // 1024
            oom = killed.pop(pid, None)
            try:  # whatever the step left behind in its group ends with it
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            if rid is None:
                continue
            try:
                send({"id": rid, "event": "exited", "status": status, "wall": time.time() - start,
                      "user": usage.ru_utime, "sys": usage.ru_stime,
                      "maxrss_kib": max(usage.ru_maxrss, peak),
                      "oom": None if oom is None else {"rss": oom[0], "limit": oom[1]}})
            except OSError:
                pass  # the worker is gone: handled by the EOF below

    def sample() -> None:
        """The RSS of every running step's group; kill a group above its limit."""
        for pid in list(running):
            rss = _group_rss(pid)
            if rss > peaks.get(pid, 0):
                peaks[pid] = rss
            limit = limits.get(pid)
            if limit and rss > limit and pid not in killed:
                killed[pid] = (rss, limit)
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass

    def start(request: dict) -> None:
        if request.get("env") is not None:  # the worker's environment of now, for prepare too
            os.environ.clear()
            os.environ.update(request["env"])
        if request.get("python") and request.get("prepare", True):
            try:
                _prepare(request["python"], request["argv"])
            except BaseException:  # the child will fail the same way, into task.log
                traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # what the server holds stays out of the child's collections: fewer COW copies
        pid = os.fork()
        if pid == 0:
            _child(request, me, [chan_in, chan_out, wake_r, wake_w])
        running[pid] = (request["id"], time.time())
        if request.get("memory_limit"):
            limits[pid] = int(request["memory_limit"])
        send({"id": request["id"], "event": "started", "pid": pid})

    while True:
        try:
            ready, _, _ = select.select([chan_in, wake_r], [], [],
                                        SAMPLE_EVERY if running else None)
        except InterruptedError:
            continue
        if running:
            sample()
        if wake_r in ready:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        reap()
        if chan_in in ready:
            data = os.read(chan_in, 1 << 16)
            if not data:  # the worker died or closed us: no step may outlive it
                for pid in list(running):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                deadline = time.time() + 5
                while running and time.time() < deadline:
                    reap()
                    time.sleep(0.01)
                return 0
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    start(request)
                except OSError as exc:
                    if exc.errno == errno.EPIPE:  # the worker is gone: the EOF above ends us
                        continue
                    _refuse(send, request, exc)
                except Exception as exc:  # e.g. fork failing for lack of memory or PIDs
                    _refuse(send, request, exc)


def _refuse(send, request: dict, exc: BaseException) -> None:
    """Tell the worker a step could not start; quietly nothing if the worker is gone."""
    try:
        send({"id": request.get("id"), "event": "failed", "message": f"{type(exc).__name__}: {exc}"})
    except OSError:
        pass


def _children(pid: int) -> list[int] | None:
    """Direct children from /proc (Linux >= 3.5); None where the kernel does not say."""
    out: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out  # gone
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return out


def _group_rss(pid: int) -> int:
    """Bytes resident of a step (a session leader) and every process it started: read
    from /proc (a fraction of a millisecond; psutil's scan of every process costs ~10 ms,
    too much four times a second per running step), psutil elsewhere."""
    todo, seen, total = [pid], set(), 0
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        children = _children(current)
        if children is None:
            return _group_rss_psutil(pid)
        todo.extend(children)
        try:
            with open(f"/proc/{current}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def _group_rss_psutil(pid: int) -> int:
    import psutil

    try:
        leader = psutil.Process(pid)
        procs = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


# ---------------------------------------------------------------------- worker side
@dataclass
class StepProcess:
    """How one step's process ended."""

    status: int | None  # raw wait status; None when the server died before reporting it
    wall: float
    user: float = 0.0
    sys: float = 0.0
    maxrss_kib: int = 0
    stopped: bool = False  # killed because its attempt ended (cancel, worker closing)
    oom: dict | None = None  # {"rss", "limit"} bytes: killed for exceeding its memory limit

    @property
    def exit_code(self) -> int | None:
        if self.status is None or not os.WIFEXITED(self.status):
            return None
        return os.WEXITSTATUS(self.status)

    @property
    def signal(self) -> int | None:
        if self.status is None or not os.WIFSIGNALED(self.status):
            return None
        return os.WTERMSIG(self.status)


class ServerLost(Exception):
    """The step server died while a step ran (the step was killed with it)."""


class StepServer:
    """The worker's handle on its step server; shared by the worker's task threads."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "timecal_core.run.step_server", "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True, start_new_session=True)
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._waiting: dict[int, list] = {}  # id -> [event, messages]
        self._pids: dict[int, int] = {}  # id -> pid of running step
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="timecal-step-server", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._lock:  # the waiting thread swaps the list under the same lock
                slot = self._waiting.get(message.get("id"))
                if slot is not None:
                    slot[1].append(message)
                    slot[0].set()
        with self._lock:  # EOF: the server is gone; kill what it left running
            self.alive = False
            pids = list(self._pids.values())
            slots = list(self._waiting.values())
        for pid in pids:
            _kill_group(pid)
        with self._lock:
            for slot in slots:
                slot[1].append({"event": "lost"})
                slot[0].set()

    def run(self, request: dict, should_stop=None, poll: float = 0.2) -> StepProcess:
        """Start a step and wait for it; kill its process group when ``should_stop()``."""
        event = threading.Event()
        slot = [event, []]
        with self._lock:
            if not self.alive:
                raise ServerLost("the step server is not running")
            rid = next(self._ids)
            self._waiting[rid] = slot
        request = {**request, "id": rid}
        start = time.time()
        pid = None
        stopped = False
        try:
            try:
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
            except OSError as exc:
                raise ServerLost(f"the step server cannot be reached: {exc}") from None
            while True:
                event.wait(poll)
                with self._lock:
                    messages, slot[1] = slot[1], []
                    event.clear()
                for message in messages:
                    kind = message.get("event")
                    if kind == "started":
                        pid = message["pid"]
                        with self._lock:
                            self._pids[rid] = pid
                        if stopped:
                            _kill_group(pid)
                    elif kind == "exited":
                        return StepProcess(message["status"], message["wall"], message["user"],
                                           message["sys"], message["maxrss_kib"], stopped,
                                           message.get("oom"))
                    elif kind == "failed":
                        raise ServerLost(f"the step server could not start the step: {message['message']}")
                    elif kind == "lost":
                        if stopped:
                            return StepProcess(None, time.time() - start, stopped=True)
                        raise ServerLost("the step server died while the step ran")
                if not stopped and should_stop is not None and should_stop():
                    stopped = True
                    if pid is not None:
                        _kill_group(pid)
        except BaseException:  # e.g. Ctrl-C in ``BXRun --run``: the step ends with its caller
            if pid is not None:
                _kill_group(pid)
            raise
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
                self._pids.pop(rid, None)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


_server: StepServer | None = None
_server_lock = threading.Lock()


def server() -> StepServer:
    """This process's step server, (re)started when absent or dead."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive or _server.proc.poll() is not None:
            _server = StepServer()
        return _server


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return serve()
    if argv[:1] == ["run"] and len(argv) >= 2:
        return call_step_function(argv[1], argv[2:])
    print("usage: python -m timecal_core.run.step_server serve | run module:function ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
