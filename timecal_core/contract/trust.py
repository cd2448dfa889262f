"""Nothing another user of the machine prepared is trusted.

On a shared login node another user can create, in advance, what a production will use: a
directory in /tmp under the name timecal would pick, the production directory itself, a
symlink named like one of its entries pointing at the owner's files, a Dask scratch space.
Trusting any of them lets that user choose where the owner's processes write, or hand
them a fake driver. So:

- every directory timecal creates or reuses is checked after creation, on a file
  descriptor opened with ``O_NOFOLLOW``: owned by the user, not a symlink, and 0700 where
  it is private; otherwise one line naming the directory and its owner (UserError, exit 2).
  Only the user's own directories are ever chmodded.
- a directory outside the production (the control socket's when the production's path is
  too long for a socket name) gets a fresh unpredictable name (``mkdtemp``) under
  ``$XDG_RUNTIME_DIR`` (checked: the user's, 0700), else ``$TMPDIR`` or ``/tmp``. Nothing
  finds it by guessing: whoever needs it reads it from the production's own record.
- an existing production (output) directory must be the user's and not writable by group
  or others without the sticky bit, and none of the names timecal writes in it may be a
  symlink or another user's, before anything is written (:func:`check_output`).
- files are created with ``O_EXCL | O_NOFOLLOW`` and renamed into place
  (:func:`write_atomically`), so a planted symlink is never written through.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError

#: Longest path a Unix socket may have (sun_path is 108 bytes on Linux, with some margin).
MAX_SOCKET_PATH = 100
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _refuse(path: Path | str, why: str) -> UserError:
    return UserError(f"{path}: {why}; timecal does not use what another user may have prepared "
                     f"(docs/explanation/security.md)")


def _describe_entry(path: Path | str) -> str:
    """What is at ``path`` instead of a directory of the user's (for the message)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISLNK(st.st_mode):
        return f"a symlink to {os.readlink(path)}, owned by {user_name(st.st_uid)}"
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a directory"
    return f"{kind}, owned by {user_name(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}"


def _open_dir(path: Path | str) -> int:
    """A descriptor of the directory ``path`` itself, never of what a symlink there names."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or isinstance(exc, PermissionError):
            raise
        raise _refuse(path, f"expected a directory of yours, found {_describe_entry(path)}") from None


def checked_dir(path: Path | str, private: bool = False, tighten: bool = True) -> Path:
    """``path`` as an existing directory of the user (not a symlink); with ``private``, mode
    0700: a directory of the user's that is more open is tightened when ``tighten``, else
    refused. Another user's directory is refused, never changed."""
    fd = _open_dir(path)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise _refuse(path, f"the directory belongs to {user_name(st.st_uid)}, not to you")
        mode = stat.S_IMODE(st.st_mode)
        if private and mode != 0o700:
            if not tighten:
                raise _refuse(path, f"the directory is mode {mode:04o}, expected 0700 (only you)")
            os.fchmod(fd, 0o700)  # ours: checked on this very descriptor
    finally:
        os.close(fd)
    return Path(path)


def owned_dir(path: Path | str, private: bool = False, mode: int = 0o777) -> Path:
    """``path`` created if absent (parents too, with ``mode`` under the umask; 0700 when
    ``private``), then checked as :func:`checked_dir` checks it."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700 if private else mode)
    except FileExistsError:
        pass
    return checked_dir(path, private=private)


def private_dir(path: Path | str) -> Path:
    """``path`` as a 0700 directory of the user, created if absent."""
    return owned_dir(path, private=True)


def runtime_dir(purpose: str) -> Path:
    """A new private directory for this process, outside any production: a fresh
    unpredictable name under ``$XDG_RUNTIME_DIR/timecal`` (checked), else under ``$TMPDIR``
    or ``/tmp``. Whoever needs it later learns its path from the one who made it."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        checked_dir(xdg, private=True, tighten=False)  # the XDG specification's own rule
        base = private_dir(Path(xdg) / "timecal")
        prefix = f"{purpose}-"
    else:
        base = Path(tempfile.gettempdir())
        prefix = f"timecal-{os.getuid()}-{purpose}-"
    if len(str(base)) + len(prefix) + 30 > MAX_SOCKET_PATH:  # a socket's name must fit in it
        base, prefix = Path("/tmp"), f"timecal-{os.getuid()}-{purpose}-"
    return checked_dir(tempfile.mkdtemp(prefix=prefix, dir=base), private=True, tighten=False)


# --------------------------------------------------------------------------- output directories
def check_output(out: Path | str, names: Iterable[str] = (), what: str = "-o") -> None:
    """Before anything is written in an existing output directory: it must be the user's
    (through a symlink only one of the user's or root's), not writable by group or others
    without the sticky bit (as ssh refuses a group-writable ``~/.ssh``), and none of
    ``names`` (the entries timecal writes there) may be a symlink or another user's. An
    absent directory passes: :func:`make_output` creates it."""
    out = Path(out)
    try:
        st = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):  # absent (or under a file: making it says so)
        return
    uid = os.getuid()
    if stat.S_ISLNK(st.st_mode):
        if st.st_uid not in (uid, 0):
            raise _refuse(out, f"{what} is a symlink (to {os.readlink(out)}) made by "
                               f"{user_name(st.st_uid)}")
        st = os.stat(out)
    if not stat.S_ISDIR(st.st_mode):
        return  # the caller says what a file is doing there
    if st.st_uid != uid:
        raise _refuse(out, f"{what} belongs to {user_name(st.st_uid)}, not to you; give an "
                           f"output directory of your own")
    mode = stat.S_IMODE(st.st_mode)
    if mode & _WRITABLE_BY_OTHERS and not mode & stat.S_ISVTX:
        raise _refuse(out, f"{what} is writable by {'others' if mode & stat.S_IWOTH else 'its group'} "
                           f"(mode {mode:04o}) without the sticky bit, so anyone allowed could "
                           f"replace what timecal writes there; run 'chmod go-w {out}'")
    for name in names:
        entry = out / name
        try:
            est = os.lstat(entry)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(est.st_mode):
            raise _refuse(entry, f"a symlink (to {os.readlink(entry)}, made by "
                                 f"{user_name(est.st_uid)}) where timecal writes its {name}; "
                                 f"timecal follows no symlink in an output directory: remove it")
        if est.st_uid != uid:
            raise _refuse(entry, f"{name} belongs to {user_name(est.st_uid)}, not to you")


def make_output(out: Path | str, names: Iterable[str] = (), what: str = "-o") -> Path:
    """The output directory, checked (:func:`check_output`), created if absent: never
    writable by group or others when timecal makes it, whatever the umask."""
    out = Path(out)
    check_output(out, names, what)
    if not out.is_dir():
        owned_dir(out, mode=0o755)
    check_output(out, names, what)
    return out


# --------------------------------------------------------------------------- files
def open_new(path: Path | str, mode: int = 0o666) -> int:
    """A descriptor of a file created here and now: never an existing file, never through a
    symlink."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def open_append(path: Path | str, mode: int = 0o666) -> int:
    """A descriptor to append to ``path`` (created if absent), never through a symlink."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def open_read(path: Path | str) -> int:
    """A descriptor to read ``path``, never through a symlink."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def write_atomically(path: Path | str, data: bytes | str, mode: int = 0o666) -> Path:
    """Write ``data`` to a new file beside ``path`` (created with ``O_EXCL | O_NOFOLLOW``)
    and rename it into place: a reader never sees half a file, a planted symlink is
    replaced, not written through, and a full disk leaves the old file as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    raw = data.encode() if isinstance(data, str) else data
    try:
        fd = open_new(tmp, mode)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
        except OSError as exc:  # a full disk names no file by itself: say which one
            exc.filename = exc.filename or str(tmp)
            raise
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def check_file(path: Path | str) -> Path:
    """``path``, if it exists, is a file of the user's and not a symlink (a file another
    library opens by name: SQLite's ledger)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Path(path)
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, f"a symlink (to {os.readlink(path)}, made by {user_name(st.st_uid)}) "
                            f"where timecal keeps a file; remove it")
    if st.st_uid != os.getuid():
        raise _refuse(path, f"the file belongs to {user_name(st.st_uid)}, not to you")
    return Path(path)


def check_secret_file(path: Path | str, what: str) -> Path:
    """A file holding a secret (a key, a password) that nobody else may read, as ssh
    requires of a private key."""
    full = Path(path).expanduser()
    try:
        st = os.stat(full)
    except OSError as exc:
        raise UserError(f"{what} = {path}: {exc.strerror or exc}") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise UserError(f"{what} = {path} is readable by others (mode {mode:04o}); run "
                        f"'chmod 600 {full}'")
    return full
