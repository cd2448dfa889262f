"""The local backend: a real Dask LocalCluster sized from timerc [local], one thread per
worker, scheduler and dashboard on free localhost ports (two users must not collide), every
Dask connection TLS with mutual authentication (127.0.0.1 is shared by every user of the
machine)."""

import urllib.error
import urllib.request

import pytest
from distributed import Client
from distributed.comm.utils import get_tcp_server_address
from distributed.security import Security

from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest
from timecal_core.contract.plugins import get_registry


def start(tmp_path, **settings):
    backend = get_registry().backend("local").item
    return backend.start(BackendRequest(settings=settings, output_dir=tmp_path))


def test_two_clusters_on_free_localhost_ports(tmp_path):
    a = start(tmp_path, workers="2")
    b = start(tmp_path, workers="1", dashboard="no")
    try:
        assert a.cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert a.cluster.scheduler_address != b.cluster.scheduler_address
        assert a.dashboard_link.startswith("http://127.0.0.1:")
        with Client(a.cluster, security=a.security) as client:
            info = client.scheduler_info()["workers"]
            assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
            assert all(addr.startswith("tls://127.0.0.1:") for addr in info)
            assert client.submit(lambda x: x + 1, 41).result() == 42
        with Client(b.cluster, security=b.security) as client:
            assert len(client.scheduler_info()["workers"]) == 1
    finally:
        a.close()
        b.close()


def test_each_cluster_has_its_own_credentials(tmp_path):
    """A client with another production's certificate (or none) is refused; the cluster's
    own works."""
    running = start(tmp_path, workers="1", dashboard="no")
    other = start(tmp_path, workers="1", dashboard="no")
    try:
        assert running.security.require_encryption
        address = running.cluster.scheduler_address
        for security in (other.security, Security.temporary()):
            with pytest.raises(OSError):
                Client(address, security=security, timeout="3s")
        with pytest.raises(OSError):
            Client(address.replace("tls://", "tcp://"), timeout="3s")
        with Client(address, security=running.security, timeout="10s") as client:
            assert client.submit(sum, [1, 2]).result() == 3
    finally:
        running.close()
        other.close()


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dashboard_off_serves_only_the_health_check(tmp_path):
    """With ``dashboard = no`` the scheduler's HTTP port (which distributed always opens)
    is on 127.0.0.1 and shows neither the dashboard nor the pages listing tasks, workers and
    logs; with the dashboard on, those pages are there (also on 127.0.0.1)."""
    on = start(tmp_path, workers="1")
    off = start(tmp_path, workers="1", dashboard="no")
    try:
        host, port = get_tcp_server_address(off.cluster.scheduler.http_server)[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        assert _http_status(base + "/health") == 200
        for page in ("/status", "/json/identity.json", "/info/main/workers.html"):
            assert _http_status(base + page) == 404, page
        dashboard = on.dashboard_link.rsplit("/", 1)[0]
        assert _http_status(dashboard + "/json/identity.json") == 200
        assert _http_status(dashboard + "/status") == 200
    finally:
        on.close()
        off.close()


@pytest.mark.parametrize("settings, message", [
    ({"workers": "many"}, "[local] workers = 'many': expected a positive integer"),
    ({"wrokers": "2"},
     "[local]: unknown setting wrokers (did you mean workers?); allowed: workers, memory_limit, dashboard"),
    ({"dashboard": "0.0.0.0:8787"}, "[local] dashboard = '0.0.0.0:8787': expected yes or no"),
])
def test_bad_settings(tmp_path, settings, message):
    with pytest.raises(UserError) as err:
        start(tmp_path, **settings)
    assert message in str(err.value)
