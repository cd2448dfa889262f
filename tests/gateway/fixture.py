"""A real dask-gateway server of the test's own (``from gateway.fixture import gateway_server``).

``dask-gateway-server`` with its local process backend (``UnsafeLocalBackend``: schedulers
and workers are processes of the user running the tests, as ``LocalBackend`` makes them
processes of the authenticated user) and ``SimpleAuthenticator`` with a random password of
this test, kept in a 0600 file. Every port is on 127.0.0.1: the gateway's HTTP API and its
scheduler proxy (on two ports, so that ``proxy_address`` is exercised), the private API,
and the schedulers' and workers' ports (``--host 127.0.0.1``: ``dask worker`` would
otherwise listen on every interface).

Its cluster options are those of dask-gateway's documentation: ``worker_cores``,
``worker_memory`` (GiB), ``environment``, and ``image``, which a local backend has no use
for as a container: here it is the workers' Python, the local equivalent of their software
environment (a Python that cannot start a worker is an image whose workers never connect).
The gateway looks at its clusters and workers every second (30 s by default) so that a
worker that died is replaced within seconds, and gives a cluster 3 workers at most (a quota).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

BIN = Path(sys.executable).parent
#: Closed dask-gateway clients, kept until the end: dask-gateway's ``__del__`` closes a
#: ``Gateway`` a second time, which raises with today's distributed (see the plugin's cluster.py).
KEEP: list = []
USER = "alice"

CONFIG = """\
import sys
from dask_gateway_server.options import Float, Integer, Mapping, Options, String

c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{http_port}"
c.Proxy.tcp_address = "127.0.0.1:{tcp_port}"
{tls}
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = open({password_file!r}).read().strip()
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{python!r}, "-m", "distributed.cli.dask_scheduler"]
c.DBBackendBase.worker_status_period = 1
c.DBBackendBase.cluster_status_period = 1
c.DBBackendBase.cluster_heartbeat_period = 2
c.DBBackendBase.worker_start_failure_limit = 2
c.ClusterConfig.cluster_max_workers = 3  # a facility's quota


def handler(options):
    return {{"worker_cores": options.worker_cores,
            "worker_memory": int(options.worker_memory * 2**30),
            "environment": options.environment,
            "worker_cmd": [options.image, "-m", "distributed.cli.dask_worker", "--host", "127.0.0.1"]}}


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Worker cores"),
    Float("worker_memory", default=1, min=0.25, max=4, label="Worker memory (GiB)"),
    String("image", default={python!r}, label="Workers' Python"),
    Mapping("environment", default={{}}, label="Environment variables"),
    handler=handler,
)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GatewayServer:
    process: subprocess.Popen
    address: str
    proxy: str
    password_file: Path
    clusters: Path
    log: Path
    private: str  # the gateway's private API (plain http on loopback), for the tests' own checks

    def timerc_section(self, extra: str = "") -> str:
        return (f"[gateway]\naddress = {self.address}\nproxy_address = {self.proxy}\nusername = {USER}\n"
                f"password_file = {self.password_file}\n{extra}")

    def client(self):
        """dask-gateway's own client, for the test's checks (through the private API: the test
        process's aiohttp keeps the CA bundle it read at import, whatever SSL_CERT_FILE says later)."""
        from dask_gateway import BasicAuth, Gateway

        gateway = Gateway(self.private, proxy_address=self.proxy,
                          auth=BasicAuth(USER, self.password_file.read_text().strip()))
        KEEP.append(gateway)
        return gateway

    def cluster_processes(self) -> list[psutil.Process]:
        """The schedulers and workers the gateway started (its proxy excluded)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for p in children:
            try:
                if "distributed.cli" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
        return found

    def wait_for_no_cluster(self, timeout: float = 60) -> list[psutil.Process]:
        """Wait until the gateway has no scheduler or worker process left; returns those left."""
        deadline = time.time() + timeout
        left = self.cluster_processes()
        while left and time.time() < deadline:
            time.sleep(0.5)
            left = self.cluster_processes()
        return left


def _wait_healthy(address: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask-gateway-server exited ({process.returncode}):\n{log.read_text()}")
        try:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only "is it up?", no secret sent
            with urllib.request.urlopen(f"{address}/api/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"dask-gateway-server did not answer within {timeout} s:\n{log.read_text()}")


def start_gateway_server(directory: Path, tls: tuple[Path, Path] | None = None) -> GatewayServer:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    password_file = directory / "password"
    with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(secrets.token_urlsafe(24) + "\n")
    clusters = directory / "clusters"
    clusters.mkdir(mode=0o700)
    http_port, tcp_port = free_port(), free_port()
    api_port = free_port()
    # With TLS the schedulers reach the gateway at its private API (plain http on loopback),
    # so that only timecal's side of the certificate question is under test.
    tls_lines = (f"c.Proxy.tls_cert = {str(tls[0])!r}\nc.Proxy.tls_key = {str(tls[1])!r}\n"
                 f"c.DBBackendBase.api_url = 'http://127.0.0.1:{api_port}/api'") if tls else ""
    config = directory / "dask_gateway_config.py"
    config.write_text(CONFIG.format(api_port=api_port, http_port=http_port, tcp_port=tcp_port, tls=tls_lines,
                                    password_file=str(password_file), clusters=str(clusters),
                                    python=sys.executable))
    log = directory / "server.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "dask-gateway-server"), "-f", str(config)], cwd=directory,
                                   stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    scheme = "https" if tls else "http"
    server = GatewayServer(process, f"{scheme}://127.0.0.1:{http_port}", f"127.0.0.1:{tcp_port}",
                           password_file, clusters, log, f"http://127.0.0.1:{api_port}")
    try:
        _wait_healthy(server.address, process, log)
    except BaseException:
        stop_gateway_server(server)
        raise
    return server


def stop_gateway_server(server: GatewayServer) -> None:
    """SIGTERM (the gateway stops its clusters), then SIGKILL for whatever is left."""
    try:
        tree = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key (0600)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.backends import default_backend  # required before cryptography 3.1
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "timecal test gateway")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256(), default_backend()))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = directory / "gateway.crt", directory / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def gateway_server(tmp_path) -> GatewayServer:
    server = start_gateway_server(tmp_path / "gateway")
    try:
        yield server
    finally:
        stop_gateway_server(server)


@pytest.fixture
def https_gateway_server(tmp_path) -> GatewayServer:
    """The same server with its HTTP API behind HTTPS, a certificate no CA signed."""
    server = start_gateway_server(tmp_path / "gateway", tls=self_signed(tmp_path / "tls"))
    try:
        yield server
    finally:
        stop_gateway_server(server)
