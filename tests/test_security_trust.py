"""Nothing another user prepared is trusted (issue 23).

On a shared login node another user can prepare, in advance, what a production will use.
Each test here lets another user of the machine (``nobody``, tests/helpers/other_user.py)
set a trap first, as the issue's reporter did, then runs the owner's real command (root
here) and checks that the owner's command refuses it with one line (exit 2) or avoids it,
and that nothing of the owner's changed: the socket fallback directory, a fake driver, an
output directory with planted symlinks, a prepared ``dask-scratch-space``, a symlinked
``status.html``. The mail server's certificate is in tests/test_security_mail.py, the batch
systems in tests/test_security_slurm.py and tests/test_security_htcondor.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import bxrun_path
from test_detach import wait_for
from helpers.other_user import (OTHER, as_other_user, attempt, fake_driver, other_uid,  # noqa: F401
                                require_other_user, shared_dir)

BIN = Path(sys.executable).parent
OTHER_NAME = re.escape(OTHER)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following symlinks): type, owner, mode, size, target."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(path)
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
        size = st.st_size if stat.S_ISREG(st.st_mode) else None
        out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_uid, stat.S_IMODE(st.st_mode),
                                            size, target)
    return out


def environment(tmp_path: Path, **extra) -> dict[str, str]:
    timerc = tmp_path / "timerc"
    if not timerc.exists():
        timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\n[local]\nworkers = 1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "TMPDIR")}
    env.update(TIMECAL_CONFIG=str(timerc), XDG_STATE_HOME=str(tmp_path / "state"), **extra)
    return env


def grid(tmp_path: Path, text: str = "index: [1, 2]\nseconds: 0.2\n") -> Path:
    path = tmp_path / "grid.yml"
    path.write_text(text)
    return path


def bxrun(env, *args, timeout=180):
    return subprocess.run([bxrun_path(), *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def one_line_refusal(res) -> str:
    """The refusal: exit 2, one line on stderr, no traceback."""
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


# ----------------------------------------------------------------------------- the control socket
def _make_open_dirs(*paths: str) -> list[str]:
    for p in paths:
        os.mkdir(p, 0o777)
        os.chmod(p, 0o777)
    return sorted(os.listdir(paths[0]))


def test_the_control_socket_never_goes_where_another_user_prepared(tmp_path):
    """A production whose ``.control/driver.sock`` would exceed the socket-name limit, with
    ``XDG_RUNTIME_DIR`` unset: the socket used to go to ``/tmp/timecal-<uid>/timecal/``, and
    a 0777 directory of that name made first by another user was reused. Now it goes to a
    fresh directory of an unpredictable name, 0700, that the record names; the prepared one
    is left as it was, and the other user can neither rename the socket nor bind beside it."""
    require_other_user()
    trap = Path(f"/tmp/timecal-{os.getuid()}")
    # The old, predictable place: prepared by the other user unless it exists already (made by
    # another test of the owner on this machine); the new place does not depend on it anyway.
    prepared = not trap.exists() and as_other_user(_make_open_dirs, str(trap), str(trap / "timecal")) == ["timecal"]
    out = tmp_path / ("a-long-directory-name-" * 4) / "prod"
    try:
        before = snapshot(trap) if prepared else None
        env = environment(tmp_path)
        res = bxrun(env, "--script", "sleeper", "--yaml", grid(tmp_path, "index: [1]\nseconds: 60\n"),
                    "-o", out, "--detach", "--interval", "1")
        assert res.returncode == 0, res.stdout + res.stderr
        record = json.loads((out / ".control" / "driver.json").read_text())
        sock = Path(record["socket"])
        assert len(str(out / ".control" / "driver.sock")) > 100 and sock.exists()
        folder = sock.parent
        assert folder.parent == Path("/tmp") and folder.name.startswith(f"timecal-{os.getuid()}-driver-")
        st = os.lstat(folder)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and mode(folder) == 0o700
        assert mode(out / ".control") == 0o700 and mode(out / ".control" / "driver.json") == 0o600
        if prepared:
            assert snapshot(trap) == before, "the prepared directory was used or changed"
        # What the reporter did next fails: rename the socket, bind a fake beside it.
        assert attempt(os.rename, str(sock), str(folder / "real.sock")).startswith("failed: PermissionError")
        assert attempt(os.listdir, str(folder)).startswith("failed: PermissionError")
        stop = subprocess.run([str(BIN / "timecal"), "stop", str(out)], env=env, capture_output=True,
                              text=True, timeout=60)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert f"asked the driver (PID {record['pid']}) to stop" in stop.stdout
        wait_for(lambda: json.loads((out / ".control" / "driver.json").read_text())["stopped"], 120,
                  "the driver to end")
        assert not folder.exists(), "the driver's socket directory outlives it"
    finally:
        record = (out / ".control" / "driver.json")
        if record.exists():  # a failed assertion must not leave the detached driver running
            pid = json.loads(record.read_text())["pid"]
            try:
                os.kill(pid, 15)
                wait_for(lambda: not Path(f"/proc/{pid}").exists(), 60, "the driver to stop")
            except ProcessLookupError:
                pass
        if prepared:
            for path in (trap / "timecal", trap):  # only if still empty: never another test's
                try:
                    path.rmdir()
                except OSError:
                    pass


@pytest.mark.parametrize("whose", ["other user's", "open to everyone"])
def test_an_xdg_runtime_dir_not_private_to_the_owner_is_refused(tmp_path, shared_dir, whose):
    """``XDG_RUNTIME_DIR`` is where the socket goes when the production's path is too long;
    one that is another user's, or more open than 0700, is refused before anything is
    written (one line naming it and its owner), and never chmodded."""
    require_other_user()
    runtime = shared_dir / "run"
    if whose == "other user's":
        as_other_user(os.mkdir, str(runtime), 0o700)
    else:
        runtime.mkdir()
        runtime.chmod(0o777)
    before = snapshot(runtime)
    out = tmp_path / ("a-long-directory-name-" * 4) / "prod"
    res = bxrun(environment(tmp_path, XDG_RUNTIME_DIR=str(runtime)), "--script", "sleeper", "--yaml",
                grid(tmp_path), "-o", out)
    line = one_line_refusal(res)
    assert str(runtime) in line
    if whose == "other user's":
        assert f"belongs to {OTHER} (uid {other_uid()})" in line
    else:
        assert "mode 0777, expected 0700" in line
    assert snapshot(runtime) == before
    assert not out.exists(), "something was written before the refusal"


def test_a_fake_driver_of_another_user_is_told_nothing(tmp_path, shared_dir):
    """The other user serves the control channel's protocol on a socket the owner's record
    names (a record left by a killed driver whose socket path they took over, as the old
    predictable fallback allowed). ``timecal stop`` and ``timecal attach`` check who serves
    the socket (SO_PEERCRED) before sending a word: refused in one line naming that user,
    and the fake receives nothing (the issue's fake got ``{'op': 'stop', ...}``)."""
    require_other_user()
    from timecal_core.run.lock import _process_start

    lair = shared_dir / "lair"
    as_other_user(os.mkdir, str(lair), 0o777)
    fake_socket, log = lair / "driver.sock", lair / "heard.jsonl"
    fake = fake_driver(fake_socket, log)
    try:
        out = tmp_path / "prod"
        (out / ".control").mkdir(parents=True, mode=0o700)
        (out / ".control" / "driver.json").write_text(json.dumps({
            "pid": fake.pid, "host": socket.gethostname(), "process_start": _process_start(fake.pid),
            "socket": str(fake_socket), "started": time.time(), "heartbeat": time.time(), "interval": 60,
            "production": str(out), "stopped": None}))
        env = environment(tmp_path)
        for command in ("stop", "attach"):
            res = subprocess.run([str(BIN / "timecal"), command, str(out)], env=env, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=60)
            line = one_line_refusal(res)
            assert f"runs as {OTHER} (uid {other_uid()}), not as you" in line and "nothing was sent" in line
            assert "asked the driver" not in res.stdout
        assert fake.poll() is None
        assert not log.exists() or log.read_text() == "", log.read_text()
    finally:
        fake.kill()
        fake.wait()


class _TinyControl:
    """The driver side of a real control channel, with the few answers a monitor needs to
    start and a scheduler address for ``debug``."""

    def __init__(self, scheduler: str):
        self.scheduler = scheduler

    def request(self, op, **args):
        answers = {"summary": {"counts": {}, "done": 0, "total": 1, "finished": False, "interval": 1,
                               "verbose": False, "backend": "local", "production": "p"},
                   "updates": {"last": 0, "items": [], "summary": {}},
                   "backend_commands": {"backend": "local", "commands": []},
                   "dask": {"scheduler": self.scheduler, "tls": None}}
        return answers[op]


def test_debug_takes_no_scheduler_from_a_driver_replaced_by_another_user(tmp_path, shared_dir, capsys):
    """The issue's attack on a monitor already attached: the socket sits in a directory the
    other user controls (the old fallback), the real driver's socket goes away and the other
    user binds a fake at the same path. The monitor's channel reconnects for the next
    request; it checks the new peer's uid again, so ``debug`` neither gets the fake's
    scheduler address nor connects to it."""
    require_other_user()
    from timecal_core.control.requests import ControlError
    from timecal_core.control.unix_socket import ControlServer, SocketChannel
    from timecal_core.monitor.monitor_shell import MonitorShell

    lair = shared_dir / "lair"
    as_other_user(os.mkdir, str(lair), 0o777)
    path = lair / "driver.sock"
    out = tmp_path / "prod"
    server = ControlServer(_TinyControl("tls://127.0.0.1:9"), out)
    os.rename(server.path, path)  # where the old fallback would have put it (a dir of the other user)
    channel = SocketChannel(path)
    fake = None
    try:
        shell = MonitorShell(channel, history_file=tmp_path / "history")
        assert channel.peer_uid == os.getuid()
        server.close()
        os.unlink(path)  # the other user may: the directory is theirs
        log = lair / "heard.jsonl"
        fake = fake_driver(path, log)
        channel.close()  # the real driver's connection is gone: the next request reconnects
        shell.onecmd("debug")
        err = capsys.readouterr().err
        assert f"runs as {OTHER} (uid {other_uid()}), not as you" in err, err
        with pytest.raises(ControlError, match="not your driver"):
            channel.request("dask")
        heard = log.read_text() if log.exists() else ""
        assert heard == "", heard  # neither a request nor a connection to its "scheduler"
    finally:
        channel.close()
        if fake is not None:
            fake.kill()
            fake.wait()


# ----------------------------------------------------------------------------- output directories
def _prepare_output(prod: str, victim: str, kind: str) -> None:
    """The other user's preparations in a shared directory, before the owner's run."""
    if kind == "owned by the other user":
        os.mkdir(prod, 0o777)
        os.chmod(prod, 0o777)
    if kind in ("owned by the other user", "sticky, planted symlinks"):
        os.symlink(victim, os.path.join(prod, ".control"))
        os.symlink(victim, os.path.join(prod, "logs"))
    if kind == "sticky, planted ledger":
        with open(os.path.join(prod, "ledger.sqlite"), "w") as fh:
            fh.write("not yours")
        os.chmod(os.path.join(prod, "ledger.sqlite"), 0o666)
    if kind == "a symlink of the other user":
        os.symlink(victim, prod)


@pytest.mark.parametrize("kind, expected", [
    ("owned by the other user", "belongs to {other}, not to you"),
    ("world-writable, no sticky bit", "writable by others (mode 0777) without the sticky bit"),
    ("sticky, planted symlinks", "a symlink (to {victim}, made by {other}) where timecal writes its"),
    ("sticky, planted ledger", "ledger.sqlite belongs to {other}, not to you"),
    ("a symlink of the other user", "is a symlink (to {victim}) made by {other}"),
])
def test_an_output_directory_another_user_prepared_is_refused(tmp_path, shared_dir, kind, expected):
    """``-o /shared/prod``: the other user made ``prod`` first, or planted symlinks
    (``.control``, ``logs``) to a directory of the owner, or their own ``ledger.sqlite``. The
    issue's BXRun followed them: the owner's directory became 0700 and received driver.json
    and driver.log. Now the run is refused before anything is written, and the owner's
    directory and the prepared one are as they were."""
    require_other_user()
    victim = tmp_path / "victim"  # a directory of the owner the other user knows of
    victim.mkdir(mode=0o755)
    (victim / "thesis.tex").write_text("the owner's work")
    prod = shared_dir / "prod"
    if kind == "world-writable, no sticky bit":  # e.g. made by the owner under umask 0
        prod.mkdir()
        prod.chmod(0o777)
    elif kind.startswith("sticky"):  # the owner's, open like /tmp: anyone may add entries
        prod.mkdir()
        prod.chmod(0o1777)
    as_other_user(_prepare_output, str(prod), str(victim), kind)
    before_victim, before_shared = snapshot(victim), snapshot(shared_dir)
    res = bxrun(environment(tmp_path), "--script", "sleeper", "--yaml", grid(tmp_path), "-o", prod)
    line = one_line_refusal(res)
    assert expected.format(other=f"{OTHER} (uid {other_uid()})", victim=victim) in line, line
    assert snapshot(victim) == before_victim
    assert snapshot(shared_dir) == before_shared


def test_a_production_of_the_owners_own_passes_and_is_never_group_writable(tmp_path):
    """The control case: a new production directory is made 0755 at most, whatever the
    umask (others could otherwise plant entries in it), and a rerun is not refused."""
    env = environment(tmp_path)
    out = tmp_path / "prod" / "mine"
    for _ in range(2):
        res = subprocess.run(["sh", "-c", 'umask 0 && exec "$@"', "sh", bxrun_path(), "--script", "sleeper",
                              "--yaml", str(grid(tmp_path)), "-o", str(out), "--interval", "1"], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
    assert mode(out) == 0o755
    assert mode(out / ".control") == mode(out / ".dask") == 0o700


# ----------------------------------------------------------------------------- Dask's scratch space
def _prepare_scratch(base: str, target_dir: str) -> list[str]:
    scratch = os.path.join(base, "dask-scratch-space")
    os.mkdir(scratch, 0o777)
    os.chmod(scratch, 0o777)
    for name in ("global.lock", "purge.lock"):
        os.symlink(os.path.join(target_dir, f"made-by-the-owner-{name}"), os.path.join(scratch, name))
    return sorted(os.listdir(scratch))


def test_a_dask_scratch_space_another_user_prepared_is_not_used(tmp_path, shared_dir):
    """The other user made ``$TMPDIR/dask-scratch-space`` (0777) with ``global.lock`` and
    ``purge.lock`` as symlinks into a directory of the owner: the issue's workers wrote
    there and created those files as the owner. The scheduler and local workers now keep
    their scratch space in the production's ``.dask`` (0700); the prepared one is untouched
    and nothing appears where its symlinks point."""
    require_other_user()
    target = tmp_path / "owner-only"  # the other user cannot create files here; the owner can
    target.mkdir(mode=0o755)
    assert as_other_user(_prepare_scratch, str(shared_dir), str(target)) == ["global.lock", "purge.lock"]
    before = snapshot(shared_dir)
    out = tmp_path / "prod" / "scratch"
    res = bxrun(environment(tmp_path, TMPDIR=str(shared_dir)), "--script", "sleeper", "--yaml", grid(tmp_path),
                "-o", out, "--interval", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(target.iterdir()) == [], "the owner's processes followed the other user's symlinks"
    assert snapshot(shared_dir) == before
    assert mode(out / ".dask") == 0o700 and (out / ".dask" / "dask-scratch-space").is_dir()


# ----------------------------------------------------------------------------- timecal serve
def _plant_page(production: str, secret: str) -> None:
    os.mkdir(production, 0o755)
    os.symlink(secret, os.path.join(production, "status.html"))


def test_serve_hands_out_no_file_through_a_symlink(tmp_path, shared_dir):
    """Under the shared ``[paths] production`` the other user made a production whose
    ``status.html`` is a symlink to a file only the owner can read, and planted the same
    symlink in a production of the owner's that is open like /tmp; ``timecal serve``
    (the owner's, with its token) lists only real pages and never serves the secret."""
    require_other_user()
    secret = tmp_path / "secret.txt"
    secret.write_text("OWNER-SECRET")
    secret.chmod(0o600)
    base = shared_dir / "productions"
    base.mkdir()
    base.chmod(0o1777)
    (base / "real").mkdir()
    (base / "real" / "status.html").write_text("<html>a real page</html>")
    (base / "open").mkdir()
    (base / "open").chmod(0o1777)
    as_other_user(_plant_page, str(base / "evil"), str(secret))
    as_other_user(os.symlink, str(secret), str(base / "open" / "status.html"))
    as_other_user(os.symlink, str(base / "real"), str(base / "alias"))
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {base}\n")
    server = subprocess.Popen([str(BIN / "timecal"), "serve"], env=environment(tmp_path), stdout=subprocess.PIPE,
                              text=True)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=(\S+)", server.stdout.readline())
        base_url, token = url.group(1), url.group(2)

        def get(path):
            try:
                with urllib.request.urlopen(f"{base_url}{path}?token={token}", timeout=10) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        status, index = get("")
        assert status == 200 and ">real</a>" in index
        assert ">evil</a>" not in index and ">open</a>" not in index and ">alias</a>" not in index
        assert get("real/") == (200, "<html>a real page</html>")
        for name in ("evil", "open", "alias"):
            status, body = get(f"{name}/")
            assert status == 404 and "OWNER-SECRET" not in body
    finally:
        server.terminate()
        server.wait(timeout=10)


# ----------------------------------------------------------------------------- batch job files
def test_batch_job_scripts_are_written_into_a_file_created_for_them(tmp_path):
    """dask-jobqueue wrote each job script by deleting a temporary file and opening its
    name again, in a shared /tmp. The backend's job class writes into the file it created
    (O_EXCL), which holds the script when the submit command reads it, and is removed after."""
    from dask_jobqueue import SLURMCluster

    from timecal_core.batch.job_files import exclusive_job_files

    job_class = exclusive_job_files(SLURMCluster.job_cls)
    job = job_class(scheduler="tls://127.0.0.1:1", name="x", cores=1, memory="1GB", processes=1,
                    job_script_prologue=["echo prologue"])
    with job.job_file() as name:
        st = os.lstat(name)
        assert stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_nlink == 1
        assert Path(name).read_text() == job.job_script() and "echo prologue" in job.job_script()
    assert not os.path.exists(name)


def test_batch_workers_make_a_private_scratch_directory_on_their_node(tmp_path, shared_dir):
    """The job script's prologue makes the worker's scratch directory with ``mktemp -d``
    (fresh, 0700, unpredictable) under ``local_directory`` (default ``$TMPDIR``, else /tmp)
    and removes it when the job ends; a ``dask-scratch-space`` the other user prepared
    there is left alone. The lines are run here by ``sh`` as the job would run them."""
    require_other_user()
    from timecal_backend_slurm.settings import parse_settings

    target = tmp_path / "owner-only"
    target.mkdir(mode=0o755)
    as_other_user(_prepare_scratch, str(shared_dir), str(target))
    before = snapshot(shared_dir)
    settings = parse_settings({"local_directory": "$SCRATCH_BASE"}, tmp_path / "prod")
    kwargs = settings.cluster_kwargs
    assert kwargs["local_directory"] == "$TIMECAL_SCRATCH"
    script = "\n".join(kwargs["job_script_prologue"] + ['echo "$TIMECAL_SCRATCH"; stat -c "%U %a" "$TIMECAL_SCRATCH"'])
    ran = subprocess.run(["sh", "-c", script], env={**os.environ, "SCRATCH_BASE": str(shared_dir)},
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    made, owner_mode = ran.stdout.splitlines()
    assert Path(made).parent == shared_dir and Path(made).name.startswith("timecal-dask-")
    assert owner_mode == "root 700"
    assert not Path(made).exists(), "the job's scratch directory outlives it"
    assert snapshot(shared_dir) == before and list(target.iterdir()) == []
    default = parse_settings({}, tmp_path / "prod").cluster_kwargs["job_script_prologue"]
    assert 'mktemp -d "${TMPDIR:-/tmp}/timecal-dask-XXXXXXXX"' in default[-2]


@pytest.mark.parametrize("value", ["/tmp/a b", "$(id)", "`id`", "/tmp;rm"])
def test_a_scratch_base_that_is_not_a_plain_path_is_refused(tmp_path, value):
    from timecal_backend_slurm.settings import parse_settings
    from timecal_core.contract.errors import UserError

    with pytest.raises(UserError, match=re.escape(f"timerc [slurm] local_directory = {value!r}: expected a directory path")):
        parse_settings({"local_directory": value}, tmp_path / "prod")


def _ask_driver(path: str) -> str:
    import socket as sockets

    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        try:
            sock.sendall(b'{"op": "dask", "args": {}}\n')
            return sock.recv(4096).decode() or "(closed without a word)"
        except (ConnectionResetError, BrokenPipeError):
            return "(closed without a word)"


def test_the_driver_answers_no_other_user_even_through_an_open_socket(tmp_path, shared_dir):
    """The driver's own end: its socket is 0600 in a 0700 directory, and even where the
    other user could reach it (moved into an open directory, made 0666), the driver checks
    the connecting process's uid and closes without a word: no scheduler address, no key."""
    require_other_user()
    from timecal_core.control.unix_socket import ControlServer

    server = ControlServer(_TinyControl("tls://127.0.0.1:9"), tmp_path / "prod")
    try:
        assert mode(server.path) == 0o600 and mode(server.path.parent) == 0o700
        assert attempt(_ask_driver, str(server.path)).startswith("failed: PermissionError")
        exposed = shared_dir / "exposed.sock"
        os.rename(server.path, exposed)
        exposed.chmod(0o666)
        assert as_other_user(_ask_driver, str(exposed)) == "(closed without a word)"
        assert "tls://127.0.0.1:9" in _ask_driver(str(exposed))  # the owner is answered
    finally:
        server.close()
