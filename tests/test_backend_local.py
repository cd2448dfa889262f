"""The local backend: a real Dask LocalCluster sized from timerc [local], one thread per
worker, scheduler and dashboard on free localhost ports (two users must not collide)."""

import pytest
from distributed import Client

from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest
from timecal_core.plugins import get_registry


def start(tmp_path, **settings):
    backend = get_registry().backend("local").item
    return backend.start(BackendRequest(settings=settings, output_dir=tmp_path))


def test_two_clusters_on_free_localhost_ports(tmp_path):
    a = start(tmp_path, workers="2")
    b = start(tmp_path, workers="1", dashboard="no")
    try:
        assert a.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert a.cluster.scheduler_address != b.cluster.scheduler_address
        assert a.dashboard_link.startswith("http://127.0.0.1:")
        with Client(a.cluster) as client:
            info = client.scheduler_info()["workers"]
            assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
            assert client.submit(lambda x: x + 1, 41).result() == 42
        with Client(b.cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("settings, message", [
    ({"workers": "many"}, "[local] workers = 'many': expected a positive integer"),
    ({"wrokers": "2"}, "unknown setting(s) wrokers; allowed: workers, memory_limit, dashboard"),
])
def test_bad_settings(tmp_path, settings, message):
    with pytest.raises(UserError) as err:
        start(tmp_path, **settings)
    assert message in str(err.value)
