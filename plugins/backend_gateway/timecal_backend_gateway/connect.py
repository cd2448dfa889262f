"""Talking to the gateway through dask-gateway's public client API (``Gateway``, its
``BasicAuth``/``KerberosAuth``/``JupyterHubAuth``, ``Options``), and turning what can go
wrong there into one line that says what to do.

TLS is dask-gateway's own: the HTTPS API is verified by aiohttp against the system's CA
bundle (``SSL_CERT_FILE`` names a site's), and the scheduler is reached through the
gateway's proxy with the certificate the gateway issued for that cluster. Nothing here
changes either; a certificate that does not verify is an error, never a prompt to skip it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import ssl
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from timecal_core.contract.errors import UserError

from .settings import SECTION, GatewaySettings


def configured_address(settings: GatewaySettings) -> str:
    """The gateway's URL: timerc, else the Dask configuration dask-gateway reads."""
    import dask

    address = settings.address or dask.config.get("gateway.address", None)
    if not address:
        raise UserError(f"--dask gateway: no gateway address; set [{SECTION}] address = https://... in timerc "
                        f"(or the Dask config gateway.address, as facilities do)")
    return str(address)


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def plain_http_warning(address: str, auth: str | None) -> str:
    """A warning when a password or token would cross the network unencrypted."""
    parts = urlsplit(address)
    if parts.scheme == "http" and auth in ("basic", "jupyterhub", None) and not _loopback(parts.hostname):
        return (f"BXRun: warning: {address} is plain http: the gateway {'password' if auth != 'jupyterhub' else 'token'} "
                f"crosses the network unencrypted (use the facility's https:// address where it has one)")
    return ""


def make_auth(settings: GatewaySettings):
    """dask-gateway's authenticator for timerc's choice, its values completed from the Dask
    configuration (``gateway.auth.kwargs``) as dask-gateway would; None lets dask-gateway
    build the one its configuration names (``gateway.auth.type``)."""
    import dask
    from dask_gateway import BasicAuth, JupyterHubAuth, KerberosAuth

    configured = dask.config.get("gateway.auth.kwargs", None) or {}
    if settings.auth == "basic":
        return BasicAuth(username=settings.username or configured.get("username"),
                         password=settings.password if settings.password is not None else configured.get("password"))
    if settings.auth == "jupyterhub":
        try:
            return JupyterHubAuth(api_token=settings.token or configured.get("api_token"))
        except ValueError:
            raise UserError(f"timerc [{SECTION}] auth = jupyterhub: no token; set token_file = PATH "
                            f"or the JUPYTERHUB_API_TOKEN environment variable") from None
    if settings.auth == "kerberos":
        if importlib.util.find_spec("kerberos") is None:
            raise UserError(f"timerc [{SECTION}] auth = kerberos needs the pykerberos package "
                            f"(pip install pykerberos, i.e. dask-gateway[kerberos]) and a ticket (kinit)")
        return KerberosAuth()
    return None


def _who(settings: GatewaySettings) -> str:
    auth = settings.auth or "the Dask config's gateway.auth"
    if settings.auth == "basic":
        return f"user {settings.username or 'your login name'} (auth basic): check [{SECTION}] username and password_file"
    if settings.auth == "jupyterhub":
        return "the JupyterHub token (auth jupyterhub): check token_file or $JUPYTERHUB_API_TOKEN"
    if settings.auth == "kerberos":
        return "your Kerberos ticket (auth kerberos): check it with klist, renew it with kinit"
    return f"the credentials of {auth}: set [{SECTION}] auth"


def certificate_error(exc: BaseException) -> bool:
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or getattr(seen, "certificate_error", None):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate(exc: Exception, address: str, settings: GatewaySettings, doing: str) -> UserError | None:
    """What dask-gateway (and aiohttp under it) raised, as a one-line UserError; None for
    anything else (a bug: its traceback is wanted)."""
    from dask_gateway import GatewayClusterError, GatewayServerError

    where = f"the gateway at {address}"
    if certificate_error(exc):  # before ValueError: aiohttp's certificate error is one too
        return UserError(f"{where}: its TLS certificate does not verify ({exc}); if your site has its own CA, "
                         f"point SSL_CERT_FILE at its bundle (timecal never turns verification off)")
    if isinstance(exc, GatewayClusterError):
        return UserError(f"{where}, {doing}: {exc}")
    if isinstance(exc, GatewayServerError):
        return UserError(f"{where}, {doing}: internal error of the gateway ({exc}); ask its administrators")
    status = getattr(exc, "status", None)  # aiohttp.ClientResponseError
    if status == 401:
        return UserError(f"{where} refused {_who(settings)} (HTTP 401 Unauthorized)")
    if status == 403:
        return UserError(f"{where} forbids this ({doing}; HTTP 403 Forbidden) to {_who(settings)}")
    if isinstance(status, int):
        return UserError(f"{where}, {doing}: HTTP {status} {getattr(exc, 'message', '')}".rstrip())
    if isinstance(exc, ValueError):  # dask-gateway's words for HTTP 404 and 422: unknown cluster, refused options
        return UserError(f"{where}, {doing}: {exc}")
    if isinstance(exc, (OSError, TimeoutError)):
        return UserError(f"cannot reach {where} ({doing}): {exc or type(exc).__name__}; check [{SECTION}] "
                         f"address (and proxy_address)")
    return None


@contextmanager
def gateway_errors(address: str, settings: GatewaySettings, doing: str) -> Iterator[None]:
    """Turns what the gateway client raises inside into one-line UserErrors (:func:`translate`)."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        error = translate(exc, address, settings, doing)
        if error is None:
            raise
        raise error from None


def open_gateway(settings: GatewaySettings):
    """A ``dask_gateway.Gateway`` client for timerc's address and authentication."""
    from dask_gateway import Gateway

    address = configured_address(settings)
    warning = plain_http_warning(address, settings.auth)
    if warning:
        print(warning, file=sys.stderr)
    return Gateway(address=address, proxy_address=settings.proxy_address,
                   public_address=settings.public_address, auth=make_auth(settings))


# --------------------------------------------------------------------------- cluster options
def _describe_options(options) -> str:
    return ", ".join(f"{name} = {options[name]!r}" for name in options) or "none"


def _environment(text: str) -> dict[str, str]:
    variables = {}
    for line in text.replace(";", "\n").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{line.strip()!r} is not NAME=VALUE")
        variables[name.strip()] = value.strip()
    return variables


def _typed(name: str, text: str, current):
    """timerc's text as the type of the option's current value (the gateway's spec says
    which: dask-gateway's fields are booleans, integers, floats, strings, choices, mappings)."""
    from dask.utils import parse_bytes

    if isinstance(current, bool):
        lowered = text.lower()
        if lowered not in ("yes", "true", "on", "1", "no", "false", "off", "0"):
            raise ValueError("expected yes or no")
        return lowered in ("yes", "true", "on", "1")
    if name == "worker_memory" and isinstance(current, (int, float)) and not text.replace(".", "", 1).isdigit():
        # dask-gateway's convention for a numeric worker_memory: GiB (to the MiB: 4GB is 3.725)
        gib = round(parse_bytes(text) / 2**30, 3)
        return int(gib) if isinstance(current, int) and float(gib).is_integer() else gib
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, Mapping):
        return _environment(text)
    return text


def cluster_options(gateway, settings: GatewaySettings):
    """The gateway's cluster options (its spec, with the Dask config's local defaults), set
    from timerc. An option the gateway does not offer, or a value it refuses, is a UserError
    naming the timerc key and what the gateway offers."""
    options = gateway.cluster_options()
    for name, text in settings.options.items():
        key = settings.option_keys[name]
        shown = f"timerc [{SECTION}] {key}" + (f" {name}" if key == "options" else "")
        if name not in options:
            raise UserError(f"{shown}: this gateway has no cluster option {name!r}; it offers: "
                            f"{_describe_options(options)} (set others with options = NAME = VALUE)")
        try:
            options[name] = _typed(name, text, options[name])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{shown} = {text!r}: the gateway's option {name} refuses it: {exc}") from None
    return options
