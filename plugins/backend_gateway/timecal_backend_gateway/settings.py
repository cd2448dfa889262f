"""timerc ``[gateway]``, validated before the gateway is contacted.

Every key may be left out: a facility that configures dask-gateway for its users (the
``gateway.*`` keys of the Dask configuration, e.g. ``DASK_GATEWAY__ADDRESS`` and
``DASK_GATEWAY__AUTH__TYPE`` set in their notebooks) needs no ``[gateway]`` section at all.

Secrets never sit in timerc (a file users copy and share): a password or a token is read
from a file that only its owner may read, as ssh insists for its keys.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from timecal_core.config.timerc import positive_int_setting, setting_lines, size_setting_or_range
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import Setting, SettingsSection

SECTION = "gateway"
CONNECT_TIMEOUT = 300
AUTH_TYPES = ("basic", "kerberos", "jupyterhub")
_YES = ("yes", "true", "on", "1")
_NO = ("no", "false", "off", "0")

#: timerc keys that set one of the gateway's cluster options -> the option's name in
#: dask-gateway's own documentation and examples (``worker_cores``, ``worker_memory``,
#: ``image``, ``environment``); a facility that names them otherwise is served by ``options``.
OPTION_KEYS = {"cores": "worker_cores", "memory": "worker_memory", "image": "image",
               "environment": "environment"}

SETTINGS = SettingsSection(SECTION, (
    Setting("address", "text", "Dask config gateway.address", "the gateway's URL, e.g. https://dask-gateway.example.org"),
    Setting("proxy_address", "text", "Dask config gateway.proxy-address, else the address's host and port",
            "the gateway's scheduler proxy, HOST:PORT or a port"),
    Setting("public_address", "text", "address", "the gateway as a browser reaches it, for the dashboard link"),
    Setting("auth", "text", "Dask config gateway.auth.type, basic", "basic, kerberos or jupyterhub"),
    Setting("username", "text", "Dask config, else your login name", "basic: the user name"),
    Setting("password_file", "path", help="basic: a file holding the password, readable by you only (chmod 600)"),
    Setting("token_file", "path", "$JUPYTERHUB_API_TOKEN", "jupyterhub: a file holding the API token, "
            "readable by you only"),
    Setting("cluster", "text", help="name of a running cluster of yours to use instead of starting one "
            "(left running at the end unless keep = no)"),
    Setting("keep", "yes/no", "no for a cluster BXRun starts", "yes: leave the cluster running at the end"),
    Setting("workers", "integer", "1", "number of workers; or adapt_min/adapt_max", minimum=1),
    Setting("adapt_min", "integer", help="adaptive scaling by the gateway: minimum number of workers", minimum=1),
    Setting("adapt_max", "integer", help="adaptive scaling by the gateway: maximum number of workers", minimum=1),
    Setting("cores", "text", help="cluster option worker_cores: cores (and task slots) per worker"),
    Setting("memory", "text", help="cluster option worker_memory, e.g. 4GB (sent in GiB when the gateway's "
            "option is a number)"),
    Setting("image", "text", help="cluster option image: the workers' software environment (container image)"),
    Setting("environment", "lines", help="cluster option environment: NAME=VALUE lines set for the "
            "scheduler and workers"),
    Setting("options", "lines", help="any other cluster option of the gateway, NAME = VALUE lines "
            "(e.g. scheduler_memory = 4)"),
    Setting("connect_timeout", "integer", str(CONNECT_TIMEOUT), "seconds the first worker may take to connect",
            minimum=1),
), help="A Dask cluster from a dask-gateway server, e.g. at an analysis facility (``--dask gateway``). "
        "Every key may be left out where the facility configures dask-gateway for its users.")
#: Keys refused with a word on where the secret belongs instead.
SECRETS = {"password": "password_file", "token": "token_file", "api_token": "token_file"}


@dataclass
class GatewaySettings:
    address: str | None
    proxy_address: str | int | None
    public_address: str | None
    auth: str | None  # None: dask-gateway's configuration decides
    username: str | None
    password: str | None
    token: str | None
    cluster: str | None  # an existing cluster to use
    keep: bool
    workers: int | None
    adapt: tuple[int, int] | None
    options: dict[str, str] = field(default_factory=dict)  # option name -> timerc text
    option_keys: dict[str, str] = field(default_factory=dict)  # option name -> the timerc key it came from
    connect_timeout: float = CONNECT_TIMEOUT


def _flag(raw: dict, key: str) -> bool | None:
    value = raw.get(key, "").strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise UserError(f"timerc [{SECTION}] {key} = {raw[key]!r}: expected yes or no")


def read_secret(key: str, path_text: str) -> str:
    """The first line of a file only its owner may read (a secret others could read
    authenticates them as the user: refused, as ssh refuses such a key)."""
    path = Path(os.path.expandvars(path_text.strip())).expanduser()
    try:
        info = path.stat()
    except OSError as exc:
        raise UserError(f"timerc [{SECTION}] {key} = {path_text.strip()!r}: {exc.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise UserError(f"timerc [{SECTION}] {key} = {path_text.strip()!r} is readable by others "
                        f"(mode {mode:04o}); run 'chmod 600 {path}'")
    if info.st_uid != os.getuid():
        raise UserError(f"timerc [{SECTION}] {key} = {path_text.strip()!r} belongs to another user; "
                        f"use a file of your own")
    lines = path.read_text(encoding="utf-8").splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise UserError(f"timerc [{SECTION}] {key} = {path_text.strip()!r} is empty")
    return secret


def _address(raw: dict, key: str) -> str | None:
    value = raw.get(key, "").strip()
    if value and not value.startswith(("http://", "https://")):
        raise UserError(f"timerc [{SECTION}] {key} = {value!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    return value.rstrip("/") or None


def _proxy_address(raw: dict) -> str | int | None:
    value = raw.get("proxy_address", "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    host, sep, port = value.rpartition(":")
    if value.startswith(("http://", "https://")) or not sep or not port.isdigit():
        raise UserError(f"timerc [{SECTION}] proxy_address = {value!r}: expected HOST:PORT (or "
                        f"gateway://HOST:PORT), or a port")
    return value


def _options(raw: dict) -> tuple[dict[str, str], dict[str, str]]:
    options: dict[str, str] = {}
    origin: dict[str, str] = {}
    for key, name in OPTION_KEYS.items():
        if raw.get(key, "").strip():
            options[name], origin[name] = raw[key].strip(), key
    for line in setting_lines(raw.get("options", "")):
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UserError(f"timerc [{SECTION}] options: {line!r} is not 'NAME = VALUE' "
                            f"(e.g. scheduler_memory = 4)")
        if name in options:
            raise UserError(f"timerc [{SECTION}] options: {name} is also set by "
                            f"'{origin[name]}'; give it once")
        options[name], origin[name] = value, "options"
    return options, origin


def parse_settings(raw: dict[str, str]) -> GatewaySettings:
    """Validate ``[gateway]``; a wrong key or value is a one-line UserError naming it."""
    raw = {k: v for k, v in raw.items() if v is not None}
    for key, instead in SECRETS.items():
        if key in raw:
            raise UserError(f"timerc [{SECTION}] {key}: secrets do not belong in timerc; put it alone in a "
                            f"file only you can read (chmod 600) and give {instead} = PATH")
    raw = {k: v for k, v in SETTINGS.check(raw).items() if v}
    auth = raw.get("auth", "").strip().lower() or None
    if auth is not None and auth not in AUTH_TYPES:
        raise UserError(f"timerc [{SECTION}] auth = {raw['auth'].strip()!r}: expected one of {', '.join(AUTH_TYPES)}")
    if raw.get("password_file", "").strip() or raw.get("username", "").strip():
        if auth not in (None, "basic"):
            raise UserError(f"timerc [{SECTION}]: username/password_file are for auth = basic, not {auth}")
        auth = "basic"
    if raw.get("token_file", "").strip():
        if auth not in (None, "jupyterhub"):
            raise UserError(f"timerc [{SECTION}]: token_file is for auth = jupyterhub, not {auth}")
        auth = "jupyterhub"
    password = read_secret("password_file", raw["password_file"]) if raw.get("password_file", "").strip() else None
    token = read_secret("token_file", raw["token_file"]) if raw.get("token_file", "").strip() else None

    workers, adapt = size_setting_or_range(SECTION, raw, "workers")

    options, origin = _options(raw)
    cluster = raw.get("cluster", "").strip() or None
    if cluster and options:
        keys = sorted(set(origin.values()))
        raise UserError(f"timerc [{SECTION}] cluster = {cluster}: a running cluster keeps the options it was "
                        f"started with; remove {', '.join(keys)} (or remove cluster to start a new one)")
    keep = _flag(raw, "keep")
    return GatewaySettings(
        address=_address(raw, "address"), proxy_address=_proxy_address(raw),
        public_address=_address(raw, "public_address"), auth=auth,
        username=raw.get("username", "").strip() or None, password=password, token=token,
        cluster=cluster, keep=keep if keep is not None else bool(cluster),
        workers=workers, adapt=adapt, options=options, option_keys=origin,
        connect_timeout=float(positive_int_setting(SECTION, raw, "connect_timeout") or CONNECT_TIMEOUT))
