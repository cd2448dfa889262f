"""Registers the ``gateway`` backend and gets its cluster: a named one of the user's, the
one an earlier driver of this production left running, or a new one with timerc's options.

Everything the gateway can refuse is asked before a task is submitted: the credentials,
the cluster options, a first worker, and whether the workers see the production directory
and have timecal (a gateway's workers run in the facility's image, not in this Python).
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest, ExecutionBackend, hookimpl

from .cluster import ACTIVE, CLOSED_CLIENTS, GatewayRunningCluster, forget_record, read_record, write_record
from .connect import cluster_options, configured_address, gateway_errors, open_gateway
from .settings import SECTION, SETTINGS, GatewaySettings, parse_settings


@hookimpl
def timecal_backends():
    yield ExecutionBackend(
        name="gateway", start=start, settings=SETTINGS,
        description="a Dask cluster from a dask-gateway server, e.g. at an analysis facility "
                    "([gateway] address, auth, workers, cores, memory, image...)")


def _canonical(options) -> str:
    return json.dumps(dict(options), sort_keys=True, default=str)


def _named(gateway, settings: GatewaySettings, errors):
    """The running cluster timerc names; UserError unless it is pending or running."""
    name = settings.cluster
    with errors(f"looking for cluster {name}"):
        mine = {report.name: report for report in gateway.list_clusters(status=["pending", "running"])}
    if name not in mine:
        listed = ", ".join(sorted(mine)) or "none"
        raise UserError(f"timerc [{SECTION}] cluster = {name}: no such pending or running cluster of yours on "
                        f"this gateway (yours: {listed}); remove cluster to start a new one")
    with errors(f"connecting to cluster {name}"):
        return gateway.connect(name, shutdown_on_close=False)


def _left_by_earlier_driver(gateway, record: dict, wanted: str, errors) -> tuple[object | None, str]:
    """(cluster to reuse or None, what was done) for the cluster an earlier driver of this
    production recorded: reused when it still runs with the same options, else stopped."""
    name = record.get("name")
    if not name:
        return None, ""
    with errors(f"asking about cluster {name}"):
        try:
            status = gateway.get_cluster(name).status.name
        except ValueError:  # the gateway forgot it
            return None, ""
    if status not in ACTIVE:
        return None, ""
    if record.get("options") == wanted:
        with errors(f"connecting to cluster {name}"):
            return gateway.connect(name, shutdown_on_close=False), f"reusing gateway cluster {name}, left running " \
                                                                    f"by an earlier run of this production"
    with errors(f"stopping cluster {name}"):
        gateway.stop_cluster(name)
    return None, (f"stopped gateway cluster {name}, left running by an earlier run of this production "
                  f"with other options than timerc's")


def start(request: BackendRequest) -> GatewayRunningCluster:
    from distributed import Client

    settings = parse_settings(dict(request.settings))
    address = configured_address(settings)
    production_dir = Path(request.output_dir)

    def errors(doing: str):
        return gateway_errors(address, settings, doing)

    gateway = open_gateway(settings)
    submitted = ""
    try:
        said = []
        if settings.cluster:
            cluster = _named(gateway, settings, errors)
            said.append(f"using gateway cluster {cluster.name} ([{SECTION}] cluster)")
        else:
            with errors("reading its cluster options"):
                options = cluster_options(gateway, settings)
            wanted = _canonical(options)
            record = read_record(production_dir)
            cluster, done = (None, "")
            if record.get("address") == address:
                cluster, done = _left_by_earlier_driver(gateway, record, wanted, errors)
            said += [done] if done else []
            if cluster is None:
                with errors("starting a cluster"):
                    name = submitted = gateway.submit(cluster_options=options)
                # Recorded before waiting for it: a driver killed from here on leaves a name behind.
                write_record(production_dir, {"address": address, "name": name, "options": wanted})
                with errors(f"starting cluster {name}"):
                    cluster = gateway.connect(name, shutdown_on_close=False)
                said.append(f"started gateway cluster {name} ({', '.join(f'{k} = {v}' for k, v in options.items())})")
            else:
                write_record(production_dir, {"address": address, "name": cluster.name, "options": wanted})
    except BaseException:
        try:
            if submitted and not settings.keep:  # failed or interrupted while it started: not left behind
                with suppress(Exception):
                    gateway.stop_cluster(submitted)
                    forget_record(production_dir, submitted)
        finally:
            gateway.close()
            CLOSED_CLIENTS.append(gateway)
        raise
    running = GatewayRunningCluster(cluster, gateway, settings, address, production_dir)
    try:
        for text in said:
            running.announce(text)
        running.announce(f"gateway cluster {cluster.name} will be " + (
            f"left running at the end ([{SECTION}] keep = yes)" if running.keep else "shut down at the end"))
        if settings.adapt:
            running.adapt(*settings.adapt)
        else:
            running.scale(settings.workers)
        running.await_first_worker()
        with errors("asking a worker about its environment"), \
                Client(cluster, security=cluster.security, set_as_default=False) as client:
            running.check_workers(client)
    except BaseException:
        running.close()
        raise
    return running
