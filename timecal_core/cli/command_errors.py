"""One way to fail for every timecal command (BXRun, plotScan, runCalibration, and any
command a plugin adds), so that users learn one convention:

- a user error (:class:`~timecal_core.contract.errors.UserError`: a file, key or value they can
  fix) is one line ``PROG: error: ...`` and exit code 2;
- the disk saying no (full, read-only, permission denied) is one line naming the file and
  what to do, exit 2: nothing already produced is lost, results are written atomically;
- an unexpected exception is a bug: one line saying so and where its traceback was
  written, exit 1;
- ``-v`` prints the traceback in every case;
- Ctrl-C is exit 130; a closed pipe (``BXRun --status -o X | head``) ends quietly.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..contract.errors import UserError

EXIT_USER = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
#: Every exit code of a timecal command and what it means (the documentation's reference
#: lists this table; a test checks that it names every EXIT_ constant).
EXIT_CODES = {
    "0": "done: everything asked for was done (BXRun: every task of the production succeeded)",
    str(EXIT_BUG): "BXRun: tasks failed for good, or a pilot task failed (the failures are listed "
                   "with their logs); any command: a bug, one line naming the file its traceback "
                   "was saved in (``~/.local/state/timecal/crashes/``)",
    str(EXIT_USER): "a mistake in what you typed or configured (a file, key or value), or a disk "
                    "that is full, read-only or forbidden: one line ``PROG: error: ...`` says which; "
                    "found before any work, nothing already produced is lost",
    str(EXIT_INTERRUPTED): "interrupted (Ctrl-C); rerun the same command to resume",
    str(EXIT_PIPE): "the reader of the output left (``BXRun --status -o X | head``): ends quietly",
    "128 + N": "BXRun's driver stopped by signal N (SIGTERM 143, SIGHUP 129): running tasks go back "
               "to pending, the ledger says so; rerun the same command to resume",
}


def crash_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "timecal" / "crashes"


def _device_of(path: Path) -> str:
    """The file system holding ``path``, as /proc/self/mounts names it (e.g. /dev/sda1 (/data))."""
    try:
        target = os.path.realpath(path)
        best = ("", "?")
        with open("/proc/self/mounts") as fh:
            for line in fh:
                device, mount = line.split()[:2]
                mount = mount.replace("\\040", " ")
                if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
                    best = (mount, device)
        return f"{best[1]} ({best[0]})" if best[0] else "the device"
    except OSError:
        return "the device"


def _ledger_full(exc: sqlite3.OperationalError) -> str | None:
    """SQLite's "database or disk is full" as the one line of :func:`disk_message`: the
    ledger's device and file (the ledger puts its path on the exception), or None when the
    error is another one."""
    if "full" not in str(exc):
        return None
    path = getattr(exc, "ledger_path", None)
    where = f"{_device_of(path)} writing {path}" if path else "the device of the production's ledger"
    return f"no space left on {where}; free space and rerun: nothing done is lost"


def disk_message(exc: OSError, given: str | None = None, default: Path | None = None) -> str | None:
    """The one line for an error the file system raised, or None when it is not one.

    ``given`` is what the user gave that decides where things are written (``-o DIR``): the
    line then starts with it and says to change it; ``default`` is the path to name when the
    error names none. (``copyfile`` names the source first and the file it wrote second.)"""
    written = exc.filename2 or exc.filename
    path = Path(os.fsdecode(written)) if written else default
    name = str(path) if path is not None else "?"
    head = f"{given}: " if given else ""
    flag = given.split()[0] if given else "-o"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = _device_of(path) if path is not None else "the device"
        return f"no space left on {where} writing {name}; free space and rerun: nothing done is lost"
    if exc.errno == errno.EROFS:
        return f"{head}read-only file system: cannot write {name}; give a writable directory ({flag})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"{head}permission denied: cannot write {name}; check the directory's permissions "
                f"or give another ({flag})")
    if given:
        return f"{head}cannot write {name}: {exc.strerror or exc}"
    return None


@contextmanager
def writing(given: str, default: Path):
    """Turn a file-system failure while setting a production up into the one line of
    :func:`disk_message`; whatever was done before is kept (results are only ever renamed
    into place)."""
    try:
        yield
    except OSError as exc:
        raise UserError(disk_message(exc, given, default)) from exc


def _save_traceback(prog: str, text: str) -> Path | None:
    try:
        from ..contract.trust import open_new, private_dir

        folder = private_dir(crash_dir())  # a traceback may show paths and values: 0700
        path = folder / f"{prog}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
        with os.fdopen(open_new(path, 0o600), "w") as fh:
            fh.write(f"{prog} {' '.join(sys.argv[1:])}\n\n{text}")
        return path
    except (OSError, UserError):  # no crash file then; the traceback is still printed
        return None


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that flushing at exit is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_cli(prog: str, body: Callable[[], int | None], verbose: bool = False,
            interrupted: str = "interrupted") -> int:
    """Run a command's body under the shared error path; returns the exit code."""

    def say(text: str) -> None:
        try:
            print(f"{prog}: {text}", file=sys.stderr, flush=True)
        except OSError:
            pass

    try:
        return int(body() or 0)
    except UserError as exc:
        if verbose:
            traceback.print_exc()
        say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say(interrupted)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE
    except (OSError, sqlite3.OperationalError) as exc:
        message = disk_message(exc) if isinstance(exc, OSError) else _ledger_full(exc)
        if message is None:
            return _bug(prog, exc, verbose, say)
        if verbose:
            traceback.print_exc()
        say(f"error: {message}")
        return EXIT_USER
    except Exception as exc:
        return _bug(prog, exc, verbose, say)


def _bug(prog: str, exc: BaseException, verbose: bool, say: Callable[[str], None]) -> int:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if verbose:
        sys.stderr.write(text)
    where = _save_traceback(prog, text)
    say(f"internal error (a bug in timecal or one of its plugins): {type(exc).__name__}: {exc}; "
        + (f"the traceback is in {where}" if where else "rerun with -v for the traceback")
        + "; please report it")
    return EXIT_BUG
