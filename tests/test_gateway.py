"""``BXRun --dask gateway`` against a real dask-gateway server started by the test on
127.0.0.1 (tests/gateway/fixture.py: its local process backend, a simple authenticator
with a random password). Whole productions, a worker killed mid-task, a wrong password,
the cluster stopped under a running production, a driver killed with -9, and what is
left on the gateway at the end (nothing)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import bxrun_path, ledger_states, results_of, run_bxrun, running_sleeper_pid, wait_until, write_timerc
from gateway.fixture import KEEP, gateway_server, https_gateway_server  # noqa: F401  (fixtures)


def use_timerc(tmp_path: Path, monkeypatch, server, extra: str = "") -> Path:
    path = write_timerc(tmp_path / "config", server.timerc_section(extra))
    monkeypatch.setenv("TIMECAL_CONFIG", str(path))
    return path


def sleeper_grid(tmp_path: Path, n: int, seconds: float) -> Path:
    grid = tmp_path / "grid.yml"
    grid.write_text(f"index: [{', '.join(str(i) for i in range(1, n + 1))}]\nseconds: {seconds}\n")
    return grid


def error_lines(stderr: str) -> list[str]:
    """BXRun's error lines (a warning of another plugin's library, e.g. HTCondor's about its
    configuration, may precede them), and never a traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("BXRun: error:")]


def sleepers_running(tmp_path: Path, monkeypatch, server, tasks: int, seconds: float):
    """BXRun in the background on a sleeper grid and one gateway worker, returned once a task
    runs: (its process, its output directory, its arguments)."""
    use_timerc(tmp_path, monkeypatch, server, "workers = 1\n")
    out = tmp_path / "prod"
    args = ("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, tasks, seconds), "--dask", "gateway",
            "-o", out, "--interval", "1")
    proc = start_bxrun(*args)
    wait_until(lambda: running_sleeper_pid(out), 120, "a task to start")
    return proc, out, args


def start_bxrun(*args) -> subprocess.Popen:
    return subprocess.Popen([bxrun_path(), *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        return proc.communicate(timeout=timeout)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def assert_nothing_left(server, out: Path) -> None:
    """No cluster of the gateway's is pending or running, none of its schedulers or
    workers is a process any more, their working directories are gone, and the production
    no longer names a cluster to reuse."""
    with server.client() as gateway:
        assert gateway.list_clusters() == []
    left = server.wait_for_no_cluster(60)
    assert not left, [p.cmdline() for p in left]
    deadline = time.time() + 30  # the gateway removes a cluster's directory after its processes
    while any(server.clusters.iterdir()) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(server.clusters.iterdir()), [str(p) for p in server.clusters.rglob("*")]
    assert not (out / ".gateway-cluster").exists()


def test_plugins_lists_the_gateway_backend_with_its_distribution():
    res = run_bxrun("--plugins")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("gateway "))
    from importlib import metadata

    assert f"timecal-backend-gateway {metadata.version('timecal-backend-gateway')}" in line, line


@pytest.mark.slow
def test_grid_of_the_emulator_runs_on_the_gateway(gateway_server, tmp_path, monkeypatch):
    """The emulator grid end to end on a cluster the gateway starts with timerc's options
    (2 workers of 512MB), through its scheduler proxy with its own TLS; at the end the
    cluster is shut down and no process of it is left."""
    use_timerc(tmp_path, monkeypatch, gateway_server, "workers = 2\nmemory = 512MB\n")
    grid = tmp_path / "grid.yml"
    grid.write_text("threshold: [5000, 6000, 7000]\nnhits: 2000\noffset_step: 1.0\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "cbcsim", "--yaml", grid, "--dask", "gateway", "-o", out, "--interval", "1",
                    input="", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    done = results_of(out)
    thresholds = sorted(json.loads((p / "params.json").read_text())["params"]["threshold"] for p in done)
    assert thresholds == [5000.0, 6000.0, 7000.0]
    assert "started gateway cluster " in res.stdout and "worker_memory = 0.477" in res.stdout, res.stdout
    assert res.stdout.count(" connected from tls://127.0.0.1:") == 2, res.stdout
    assert_nothing_left(gateway_server, out)


@pytest.mark.slow
def test_a_worker_killed_mid_task(gateway_server, tmp_path, monkeypatch):
    """A worker (the process tree the gateway started) is killed with -9 while it runs a
    task: the task is rerun, every result exists exactly once, the monitor's lines say the
    worker left and a replacement connected (the gateway replaces it itself)."""
    use_timerc(tmp_path, monkeypatch, gateway_server, "workers = 2\n")
    grid = sleeper_grid(tmp_path, 6, 4)
    out = tmp_path / "prod"
    proc = start_bxrun("--script", "sleeper", "--yaml", grid, "--dask", "gateway", "-o", out, "--interval", "1")
    try:
        pid = wait_until(lambda: running_sleeper_pid(out), 120, "a task to start")
        # Up from the task to the process the gateway started (the worker's nanny, a session
        # leader); its process group holds the worker process too.
        worker = next(p for p in psutil.Process(pid).parents() if "distributed.cli.dask_worker" in " ".join(p.cmdline()))
        assert os.getsid(worker.pid) == worker.pid
        os.killpg(worker.pid, signal.SIGKILL)
        output = finish(proc, 240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    done = results_of(out)
    indices = sorted(json.loads((p / "params.json").read_text())["params"]["index"] for p in done)
    assert indices == [1, 2, 3, 4, 5, 6], indices  # each result exactly once
    assert "1 needed more than one attempt" in output, output
    lost = output.index("left the scheduler; the gateway does not say why")
    assert " connected from tls://127.0.0.1:" in output[lost:], output  # the gateway's replacement
    states = ledger_states(out)
    assert sorted(a for _, s, a in states.values()) == [1, 1, 1, 1, 1, 2]
    assert {s for _, s, _ in states.values()} == {"done"}
    assert_nothing_left(gateway_server, out)


def test_a_wrong_password_is_one_line_and_exit_2(gateway_server, tmp_path, monkeypatch):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    use_timerc(tmp_path, monkeypatch, gateway_server)
    timerc = Path(os.environ["TIMECAL_CONFIG"])
    timerc.write_text(timerc.read_text().replace(str(gateway_server.password_file), str(wrong)))
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert f"the gateway at {gateway_server.address} refused user alice (auth basic)" in lines[0], lines[0]
    assert "HTTP 401" in lines[0] and "password_file" in lines[0]
    assert "not-the-password" not in res.stdout + res.stderr
    with gateway_server.client() as gateway:
        assert gateway.list_clusters() == []


def test_a_password_others_can_read_is_refused_before_the_gateway_is_asked(gateway_server, tmp_path, monkeypatch):
    use_timerc(tmp_path, monkeypatch, gateway_server)
    gateway_server.password_file.chmod(0o644)
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", tmp_path / "prod")
    assert res.returncode == 2 and "is readable by others (mode 0644); run 'chmod 600" in res.stderr, res.stderr
    assert "POST /api/v1/clusters" not in gateway_server.log.read_text()


def test_an_option_the_gateway_does_not_offer(gateway_server, tmp_path, monkeypatch):
    use_timerc(tmp_path, monkeypatch, gateway_server, "options =\n    gpus = 1\n")
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", tmp_path / "prod")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "timerc [gateway] options gpus: this gateway has no cluster option 'gpus'; it offers: worker_cores = 1, " \
           "worker_memory = 1.0" in res.stderr, res.stderr
    use_timerc(tmp_path, monkeypatch, gateway_server, "cores = 8\n")
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", tmp_path / "prod")
    assert res.returncode == 2 and "timerc [gateway] cores = '8': the gateway's option worker_cores refuses it" \
        in res.stderr, res.stderr


@pytest.mark.slow
def test_workers_that_cannot_start(gateway_server, tmp_path, monkeypatch):
    """An image whose workers cannot start (here: a Python that does not exist): the gateway
    gives up on the cluster (FAILED) and BXRun says so in one line, exit 2, nothing left."""
    use_timerc(tmp_path, monkeypatch, gateway_server, f"image = {tmp_path / 'no-such-python'}\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out, timeout=180)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "before any worker connected: its workers failed to start" in res.stderr, res.stderr
    assert "FAILED" in res.stderr and len(error_lines(res.stderr)) == 1, res.stderr
    assert_nothing_left(gateway_server, out)


def test_a_cluster_that_fails_to_start(gateway_server, tmp_path, monkeypatch):
    """A scheduler that cannot start (here its Python is broken by the environment option):
    the gateway fails the cluster while BXRun waits for it; one line, exit 2, and the
    production names no cluster to reuse."""
    use_timerc(tmp_path, monkeypatch, gateway_server, "environment = PYTHONHOME=/nonexistent\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out,
                    timeout=180)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = error_lines(res.stderr)
    assert f"the gateway at {gateway_server.address}, starting cluster " in line and "failed to start" in line, line
    assert_nothing_left(gateway_server, out)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem over the production directory for the "
                    "workers only (unshare --mount) needs root, as in CI")
def test_workers_that_do_not_see_the_production_directory(gateway_server, tmp_path, monkeypatch):
    """The workers write the results into the production directory, so they must see it:
    here the workers' image mounts an empty filesystem over it in their own mount namespace
    (as a facility whose workers mount another filesystem at that path). BXRun refuses in
    one line, exit 2, before any task runs, and shuts the cluster down."""
    out = tmp_path / "prod"
    out.mkdir()
    image = tmp_path / "image"
    image.write_text(f"#!/bin/sh\nexec unshare --mount --propagation private sh -c "
                     f"'mount -t tmpfs timecal-test \"$0\" && exec \"$@\"' {out} {sys.executable} \"$@\"\n")
    image.chmod(0o755)
    use_timerc(tmp_path, monkeypatch, gateway_server, f"image = {image}\n")
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out, timeout=180)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"the gateway's workers do not see the production directory {out} (asked worker tls://127.0.0.1:" \
        in res.stderr and len(error_lines(res.stderr)) == 1, res.stderr
    assert not results_of(out) if (out / "results").exists() else True
    assert_nothing_left(gateway_server, out)


@pytest.mark.slow
def test_the_cluster_stopped_under_a_running_production(gateway_server, tmp_path, monkeypatch):
    """The gateway stops the cluster (an idle timeout, an administrator, the user's other
    session): BXRun stops with one line saying so instead of waiting for workers forever;
    the rerun resumes on a new cluster and completes."""
    proc, out, args = sleepers_running(tmp_path, monkeypatch, gateway_server, 3, 30)
    name = json.loads((out / ".gateway-cluster").read_text())["name"]
    with gateway_server.client() as gateway:
        gateway.stop_cluster(name)
    output = finish(proc, 120)
    assert proc.returncode == 1, output
    assert f"BXRun: gateway cluster {name} was stopped (STOPP" in output, output
    assert re.search(r"3 tasks left to run \([^)]*\): rerun the same command to resume", output), output
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3]\nseconds: 1\n")
    res = run_bxrun(*args, input="", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(results_of(out)) == 3
    assert_nothing_left(gateway_server, out)


@pytest.mark.slow
def test_the_gateway_goes_away_under_a_running_production(gateway_server, tmp_path, monkeypatch):
    """The facility's gateway stops (its clusters with it) while a production runs: BXRun
    says once that it cannot reach the gateway, and after connect_timeout stops with one
    line saying why, and how to resume."""
    from gateway.fixture import stop_gateway_server

    use_timerc(tmp_path, monkeypatch, gateway_server, "workers = 1\nconnect_timeout = 5\n")
    out = tmp_path / "prod"
    proc = start_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 2, 60), "--dask", "gateway",
                       "-o", out, "--interval", "1")
    wait_until(lambda: running_sleeper_pid(out), 120, "a task to start")
    stop_gateway_server(gateway_server)
    output = finish(proc, 180)
    assert proc.returncode == 1, output
    assert output.count("; asking again at every interval") == 1, output  # said once
    assert "BXRun: no word from the gateway about cluster " in output, output
    assert "([gateway] connect_timeout); last: " in output and gateway_server.address in output, output
    assert re.search(r"2 tasks left to run \([^)]*\): rerun the same command to resume", output), output


@pytest.mark.slow
def test_sigterm_to_the_driver_shuts_the_cluster_down(gateway_server, tmp_path, monkeypatch):
    """A driver stopped with SIGTERM (a batch system's, a logout's) stops the production and
    still shuts its gateway cluster down: nothing left running on the facility."""
    proc, out, _ = sleepers_running(tmp_path, monkeypatch, gateway_server, 2, 60)
    proc.send_signal(signal.SIGTERM)
    output = finish(proc, 120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert re.search(r"signal SIGTERM; \d+ tasks? left to run \([^)]*\): rerun the same command to resume",
                     output), output
    assert_nothing_left(gateway_server, out)


@pytest.mark.slow
def test_a_driver_killed_with_9_leaves_its_cluster_to_the_rerun(gateway_server, tmp_path, monkeypatch):
    """kill -9 of BXRun cannot shut its cluster down: the production records the cluster's
    name, and the rerun of the same command reuses it (same options), completes, and shuts
    it down."""
    proc, out, args = sleepers_running(tmp_path, monkeypatch, gateway_server, 2, 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    name = json.loads((out / ".gateway-cluster").read_text())["name"]
    with gateway_server.client() as gateway:
        assert [c.name for c in gateway.list_clusters()] == [name]
    res = run_bxrun(*args, input="", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"reusing gateway cluster {name}, left running by an earlier run of this production" in res.stdout
    assert len(results_of(out)) == 2
    assert_nothing_left(gateway_server, out)


@pytest.mark.slow
def test_keep_then_reuse_by_name(gateway_server, tmp_path, monkeypatch):
    """keep = yes leaves the cluster running; another production names it (cluster = NAME)
    and, with keep = no, shuts it down at its end."""
    use_timerc(tmp_path, monkeypatch, gateway_server, "workers = 1\nkeep = yes\n")
    first = tmp_path / "first"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway",
                    "-o", first, input="", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    with gateway_server.client() as gateway:
        (kept,) = gateway.list_clusters()
    assert f"gateway cluster {kept.name} left running ([gateway] keep = yes)" in res.stdout, res.stdout
    assert gateway_server.cluster_processes()
    use_timerc(tmp_path, monkeypatch, gateway_server, f"cluster = {kept.name}\nkeep = no\n")
    second = tmp_path / "second"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway",
                    "-o", second, input="", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"using gateway cluster {kept.name} ([gateway] cluster)" in res.stdout
    assert_nothing_left(gateway_server, second)


def test_the_test_gateway_listens_on_loopback_only(gateway_server):
    """The gateway's local backend runs workers as the user's processes and its password is
    the only lock: every port of the server, its proxy, schedulers and workers is on
    127.0.0.1."""
    with gateway_server.client() as gateway:
        cluster = gateway.new_cluster()
        KEEP.append(cluster)  # see tests/gateway/fixture.py: KEEP
        try:
            cluster.scale(1)
            wait_until(lambda: cluster.scheduler_info.get("workers"), 60, "a worker")
            processes = [psutil.Process(gateway_server.process.pid),
                         *psutil.Process(gateway_server.process.pid).children(recursive=True)]
            listening = [(p.pid, c.laddr) for p in processes  # net_connections: psutil >= 6
                         for c in getattr(p, "net_connections", p.connections)("inet")
                         if c.status == psutil.CONN_LISTEN]
        finally:
            cluster.shutdown()
    assert len(listening) >= 8, listening  # API, proxy (2), scheduler (3), worker + nanny
    assert all(addr.ip == "127.0.0.1" for _, addr in listening), listening


@pytest.mark.slow
def test_https_gateway_whose_certificate_does_not_verify(https_gateway_server, tmp_path, monkeypatch):
    """timecal leaves TLS verification to dask-gateway (aiohttp): a gateway whose certificate
    no trusted CA signed is refused in one line, exit 2, before any cluster exists; trusting
    that certificate the standard way (SSL_CERT_FILE) is all it takes to run."""
    server = https_gateway_server
    assert server.address.startswith("https://127.0.0.1:")
    use_timerc(tmp_path, monkeypatch, server)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"the gateway at {server.address}: its TLS certificate does not verify" in res.stderr, res.stderr
    assert "SSL_CERT_FILE" in res.stderr and len(error_lines(res.stderr)) == 1, res.stderr
    assert "POST /api/v1/clusters" not in server.log.read_text()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "tls" / "gateway.crt"))
    res = run_bxrun("--script", "sleeper", "--yaml", sleeper_grid(tmp_path, 1, 0), "--dask", "gateway", "-o", out,
                    input="", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(results_of(out)) == 1
    assert_nothing_left(server, out)


# --------------------------------------------------------------------------- timerc [gateway]
def parse(text: str):
    from timecal_backend_gateway.settings import parse_settings

    return parse_settings(dict(line.split(" = ", 1) for line in text.strip().splitlines()))


@pytest.mark.parametrize("text, words", [
    ("password = hunter2", "secrets do not belong in timerc; put it alone in a file only you can read"),
    ("api_token = abc", "give token_file = PATH"),
    ("workerz = 2", "unknown setting workerz (did you mean workers?); allowed: address"),
    ("auth = ldap", "auth = 'ldap': expected one of basic, kerberos, jupyterhub"),
    ("workers = 2\nadapt_max = 4", "give either workers or adapt_min/adapt_max, not both"),
    ("adapt_min = 5\nadapt_max = 2", "adapt_min = 5 exceeds adapt_max = 2"),
    ("cluster = abc\ncores = 2", "cluster = abc: a running cluster keeps the options it was started with; remove cores"),
    ("address = gateway.example.org", "expected http://HOST[:PORT] or https://HOST[:PORT]"),
    ("proxy_address = https://x:8786", "proxy_address = 'https://x:8786': expected HOST:PORT"),
    ("keep = maybe", "keep = 'maybe': expected yes or no"),
    ("auth = kerberos\nusername = alice", "username/password_file are for auth = basic, not kerberos"),
    ("cores = 2\noptions = worker_cores = 2", "options: worker_cores is also set by 'cores'; give it once"),
])
def test_a_wrong_gateway_setting_is_one_line_naming_it(text, words):
    from timecal_core.contract.errors import UserError

    with pytest.raises(UserError) as caught:
        parse(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_secret_file_of_another_user_or_readable_by_others_is_refused(tmp_path):
    from timecal_backend_gateway.settings import read_secret
    from timecal_core.contract.errors import UserError

    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    with pytest.raises(UserError, match=r"is readable by others \(mode 0640\); run 'chmod 600"):
        read_secret("password_file", str(secret))
    secret.chmod(0o600)
    assert read_secret("password_file", str(secret)) == "s3cret"
    if os.geteuid() == 0:
        os.chown(secret, 12345, 12345)
        with pytest.raises(UserError, match="belongs to another user"):
            read_secret("password_file", str(secret))


def test_defaults_keep_a_named_cluster_and_stop_a_started_one():
    started, named = parse("workers = 3"), parse("cluster = abc")
    assert (started.workers, started.keep, started.adapt) == (3, False, None)
    assert (named.keep, named.cluster, named.options) == (True, "abc", {})
    assert parse("cluster = abc\nkeep = no").keep is False
    assert parse("adapt_max = 4").adapt == (1, 4)


def test_a_password_over_plain_http_to_another_host_is_warned_about():
    from timecal_backend_gateway.connect import plain_http_warning

    assert "crosses the network unencrypted" in plain_http_warning("http://gateway.example.org", "basic")
    assert "token crosses" in plain_http_warning("http://10.0.0.1:8000", "jupyterhub")
    assert plain_http_warning("https://gateway.example.org", "basic") == ""
    assert plain_http_warning("http://127.0.0.1:8000", "basic") == ""  # loopback: this machine only
    assert plain_http_warning("http://gateway.example.org", "kerberos") == ""  # no secret on the wire


def test_authenticators_are_dask_gateways_own(monkeypatch, tmp_path):
    """basic, jupyterhub and kerberos become dask-gateway's BasicAuth, JupyterHubAuth and
    KerberosAuth (what they send is theirs); timerc's values first, then the Dask config's."""
    import dask
    from dask_gateway import BasicAuth, JupyterHubAuth

    from timecal_backend_gateway.connect import make_auth
    from timecal_core.contract.errors import UserError

    with dask.config.set({"gateway.auth.kwargs": {"username": "cfg-user", "password": "cfg-pass"}}):
        auth = make_auth(parse("auth = basic"))
        assert isinstance(auth, BasicAuth) and (auth.username, auth.password) == ("cfg-user", "cfg-pass")
        auth = make_auth(parse("username = alice"))
        assert (auth.username, auth.password) == ("alice", "cfg-pass")
    assert make_auth(parse("workers = 1")) is None  # dask-gateway's configuration decides
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-the-hub")
    auth = make_auth(parse("auth = jupyterhub"))
    assert isinstance(auth, JupyterHubAuth) and auth.api_token == "from-the-hub"
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    with pytest.raises(UserError, match="auth = jupyterhub: no token; set token_file"):
        make_auth(parse("auth = jupyterhub"))
    import importlib.util

    if importlib.util.find_spec("kerberos") is None:
        with pytest.raises(UserError, match="auth = kerberos needs the pykerberos package"):
            make_auth(parse("auth = kerberos"))


def test_what_the_monitor_gets_from_a_gateway_cluster(gateway_server, tmp_path):
    """The monitor's view of a real gateway cluster: its workers as rows of ``jobs``
    (connected, then the ones asked for beyond the gateway's quota of 3, never connected),
    the requested size, the security line of ``client``, one notice per worker that
    connects and one when requested workers do not come; closing it (keep = no) stops it
    on the gateway."""
    from timecal_backend_gateway.cluster import GatewayRunningCluster

    gateway = gateway_server.client()
    cluster = gateway.new_cluster(shutdown_on_close=False)
    running = GatewayRunningCluster(cluster, gateway, parse("workers = 2\nconnect_timeout = 1"),
                                    gateway_server.private, tmp_path)
    try:
        running.scale(2)
        wait_until(lambda: len(cluster.scheduler_info.get("workers", {})) == 2, 60, "two workers")
        assert running.requested() == 2
        notices = running.supervise()
        assert sum(" connected from tls://127.0.0.1:" in n for n in notices) == 2, notices
        assert [j.state for j in running.batch_jobs()] == ["connected", "connected"]
        running.scale(4)
        wait_until(lambda: len(cluster.scheduler_info.get("workers", {})) == 3, 60, "a third worker")
        time.sleep(1.5)  # longer than connect_timeout with one requested worker missing
        notices = running.supervise()
        assert "the gateway says: Scale request of 4 workers would exceed resource limit of 3 workers" \
            in " ".join(notices), notices
        assert "1 of 4 requested workers have not connected for" in " ".join(notices), notices
        states = [j.state for j in running.batch_jobs()]
        assert states.count("connected") == 3 and states.count("requested") == 1, states
        assert "certificate the gateway issued for cluster" in running.describe_security()
    finally:
        running.close()
    with gateway_server.client() as check:
        assert check.list_clusters() == []
    assert not gateway_server.wait_for_no_cluster(60)
