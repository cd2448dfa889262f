"""Another user of the machine cannot reach a production's Dask cluster (issue 18).

A real production (``BXRun --dask local``) runs while a process of an unprivileged user
(``nobody``) does what the issue's reporter did: it reads the scheduler address from the
dashboard, then tries to connect a Dask client, and a bare Dask RPC, to the scheduler and
to every TCP port the production's processes listen on (found with psutil), with plain
``tcp://`` and with ``tls://`` and a certificate of its own. Every attempt must fail and
the production must complete. The same process succeeds against a plain ``tcp://``
LocalCluster (it runs code as root there), and against a TLS cluster whose key it was
given, so the failures are due to the credentials, not to a broken attacker.

Only root can switch to another user: elsewhere the test skips and says so. The attacker
is this file run as a script: it imports what it needs as root, then drops to ``nobody``
(setgroups/setgid/setuid) before touching the network.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

ATTACKER = "nobody"
TIMEOUT = 3.0  # seconds per connection attempt
FAILURES = ("OSError", "TimeoutError", "CommClosedError", "SSLError", "SSLCertVerificationError",
            "FatalCommClosedError", "ConnectionRefusedError", "ConnectionResetError", "IncompleteReadError", "CancelledError",
            "HTTPError", "URLError", "RemoteDisconnected", "BadStatusLine", "ValueError")


# ----------------------------------------------------------------------------- attacker side
async def _client_attempt(address: str, security) -> str:
    from distributed import Client

    import asyncio

    async def run_as_intruder():
        async with Client(address, security=security, asynchronous=True, timeout=TIMEOUT) as client:
            return await client.run(os.getuid)

    try:  # a Dask client talking to an HTTP port waits forever for a reply: bound it
        uids = await asyncio.wait_for(run_as_intruder(), 3 * TIMEOUT)
        return f"ok: ran code on the workers as uid {sorted(set(uids.values()))}"
    except BaseException as exc:  # noqa: BLE001  (every way of failing is a result)
        return f"failed: {type(exc).__name__}: {exc}"[:300]


async def _rpc_attempt(address: str, security) -> str:
    """A bare Dask message: what an intruder would send to a worker or nanny port."""
    import asyncio

    from distributed.comm import connect

    args = security.get_connection_args("client") if security is not None else {}
    try:
        comm = await asyncio.wait_for(connect(address, timeout=TIMEOUT, **args), TIMEOUT + 2)
        try:
            await comm.write({"op": "identity", "reply": True})
            reply = await asyncio.wait_for(comm.read(), TIMEOUT)
        finally:
            comm.abort()
        return f"ok: identity {str(reply)[:120]}"
    except BaseException as exc:  # noqa: BLE001
        return f"failed: {type(exc).__name__}: {exc}"[:300]


def _scheduler_from_dashboard(ports: list[int]) -> dict[int, str]:
    """The issue's first step: ask every port for the dashboard's identity.json."""
    import urllib.request

    found = {}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/identity.json",
                                        timeout=TIMEOUT) as response:
                found[port] = json.loads(response.read())["address"]
        except Exception:  # noqa: BLE001  (not a dashboard)
            pass
    return found


def attack(request: dict) -> dict:
    """Runs as ``nobody``; returns {target: {method: outcome}}."""
    import asyncio

    from distributed.security import Security

    own = Security.temporary()  # a perfectly valid certificate, of the wrong CA
    given = request.get("given")
    given = Security(require_encryption=True, **given) if given else None

    identities = _scheduler_from_dashboard(request["ports"])
    targets = [f"127.0.0.1:{port}" for port in request["ports"]]
    targets += [addr.split("://", 1)[1] for addr in identities.values()]

    async def everything():
        jobs = {}
        for target in dict.fromkeys(targets):
            jobs[(target, "client tcp://")] = _client_attempt(f"tcp://{target}", None)
            jobs[(target, "client tls:// own certificate")] = _client_attempt(f"tls://{target}", own)
            jobs[(target, "rpc tcp://")] = _rpc_attempt(f"tcp://{target}", None)
            jobs[(target, "rpc tls:// own certificate")] = _rpc_attempt(f"tls://{target}", own)
        for address in request.get("controls", []):
            jobs[(address, "control client")] = _client_attempt(address, None)
        if request.get("given_control"):
            jobs[(request["given_control"], "control client with the given key")] = _client_attempt(
                request["given_control"], given)
        results = await asyncio.gather(*jobs.values())
        out: dict = {}
        for (target, method), result in zip(jobs, results):
            out.setdefault(target, {})[method] = result
        return out

    return {"uid": os.getuid(), "dashboards": identities, "results": asyncio.run(everything())}


def attacker_main() -> None:
    """As root: import everything, read the request, drop to ``nobody``, attack."""
    import asyncio  # noqa: F401  (before the drop: the interpreter's files may be unreadable)
    import ssl  # noqa: F401
    import urllib.request  # noqa: F401

    import distributed  # noqa: F401
    import distributed.comm.tcp  # noqa: F401  (both tcp:// and tls://)
    from distributed.security import Security

    request = json.loads(Path(sys.argv[2]).read_text())
    Security.temporary().get_connection_args("client")  # loads cryptography and ssl fully
    user = pwd.getpwnam(ATTACKER)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    try:
        os.setuid(0)
        sys.exit("could not drop root")
    except PermissionError:
        pass
    print(json.dumps(attack(request)))


# ----------------------------------------------------------------------------- test side
def _needs_root_and_attacker():
    if os.geteuid() != 0:
        pytest.skip("needs root: the test switches to another user (nobody) to play the intruder")
    try:
        pwd.getpwnam(ATTACKER)
    except KeyError:
        pytest.skip(f"no user {ATTACKER!r} on this machine to play the intruder")


def run_attacker(tmp_path: Path, request: dict) -> dict:
    path = tmp_path / "attack.json"
    path.write_text(json.dumps(request))
    path.chmod(0o600)  # may hold a key: read as root, before the drop
    done = subprocess.run([sys.executable, __file__, "--attack", str(path)], capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def listening_ports(pid: int) -> dict[int, str]:
    """TCP ports the process and its descendants listen on -> the process name."""
    import psutil

    root = psutil.Process(pid)
    ports = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    ports[conn.laddr.port] = f"{proc.pid} {' '.join(proc.cmdline())[:80]}"
        except psutil.NoSuchProcess:
            pass
    return ports


def _failed_for_want_of_credentials(outcome: str) -> bool:
    return outcome.startswith("failed: ") and outcome.split(":", 2)[1].strip() in FAILURES


def test_another_user_cannot_reach_a_running_production(tmp_path, timerc):
    _needs_root_and_attacker()
    from distributed import LocalCluster
    from distributed.security import Security

    from conftest import bxrun_path

    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3, 4, 5, 6]\nseconds: 10\n")
    out = tmp_path / "prod"
    production = subprocess.Popen([bxrun_path(), "--script", "sleeper", "--yaml", str(grid), "--dask", "local",
                                   "-o", str(out), "--interval", "1"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
    plain = LocalCluster(n_workers=1, processes=False, host="127.0.0.1", protocol="tcp://",
                         scheduler_port=0, dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    key = Security.temporary()
    given = LocalCluster(n_workers=1, processes=False, host="127.0.0.1", security=key,
                         scheduler_port=0, dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    try:
        deadline = time.time() + 90
        while not list((out / "results" / ".tmp").glob("*/task.log")):  # workers are running tasks
            assert production.poll() is None, production.communicate()[0]
            assert time.time() < deadline, "the production did not start a task within 90 s"
            time.sleep(0.2)
        ports = listening_ports(production.pid)
        given_key = {k: getattr(key, k) for k in ("tls_ca_file", "tls_client_cert", "tls_client_key")}
        started = time.time()
        report = run_attacker(tmp_path, {"ports": sorted(ports), "controls": [plain.scheduler_address],
                                         "given": given_key, "given_control": given.scheduler_address})
        still_running = production.poll() is None
        print(f"attack took {time.time() - started:.1f} s:", json.dumps(report, indent=1))  # shown on failure
        output, _ = production.communicate(timeout=180)
    finally:
        if production.poll() is None:
            production.kill()
        plain.close()
        given.close()

    assert report["uid"] == pwd.getpwnam(ATTACKER).pw_uid
    results = report["results"]
    # The controls: the same process runs code as root through a plain tcp:// cluster, and
    # through TLS when it holds the key.
    assert results[plain.scheduler_address]["control client"].startswith("ok: ran code on the workers as uid [0]")
    assert results[given.scheduler_address]["control client with the given key"].startswith("ok: ran code")
    # The production: the dashboard gives the address away, but nothing accepts the intruder.
    assert still_running, "the attack must hit a live production"
    attempts = {(t, m): r for t, methods in results.items() for m, r in methods.items()
                if not m.startswith("control")}
    accepted = {k: r for k, r in attempts.items() if not _failed_for_want_of_credentials(r)}
    assert not accepted, json.dumps({f"{t} {m} ({ports.get(int(t.rsplit(':', 1)[1]))})": r
                                     for (t, m), r in accepted.items()}, indent=1)
    assert len(ports) >= 5, ports  # scheduler, dashboard, and each worker's nanny and worker
    assert len(attempts) == 4 * len(ports)
    (scheduler,) = set(report["dashboards"].values())  # the dashboard still gives it away
    assert scheduler.startswith("tls://127.0.0.1:") and int(scheduler.rsplit(":", 1)[1]) in ports
    assert production.returncode == 0, output
    assert "production complete: 6 tasks done" in output


if __name__ == "__main__" and sys.argv[1:2] == ["--attack"]:
    attacker_main()
