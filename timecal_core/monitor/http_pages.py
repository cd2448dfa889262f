"""``timecal serve``: every production's ``status.html`` over HTTP on 127.0.0.1, for an SSH
tunnel (``ssh -L 8765:127.0.0.1:8765 login-node``).

A login node is shared: the pages are served only with a secret token that the server
prints for its owner (in the URL the first time, then as a cookie), never on an address
other than the loopback, and only the status pages: a regular file ``status.html`` directly
in a production directory it lists, opened without following a symlink (a ``status.html``
that is a symlink, or a production under ``[paths] production`` that is one, would
otherwise hand out any file the owner can read)."""

from __future__ import annotations

import html
import http.server
import os
import secrets
import stat
import urllib.parse
from pathlib import Path

from ..config.timerc import load_timerc
from ..contract.errors import UserError
from ..views.status_html import PAGE

COOKIE = "timecal_token"


def productions(roots: list[Path] | None) -> dict[str, Path]:
    """Name -> production directory that has a status page (directories found under
    ``[paths] production`` only if they are directories there, not symlinks)."""
    if roots is None:
        base = load_timerc().optional_path("production")
        if base is None or not base.is_dir():
            raise UserError("timecal serve: give production directories, or set timerc "
                            "[paths] production")
        roots = sorted(Path(e.path) for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
    return {p.name: p for p in roots if read_page(p) is not None}


def read_page(production: Path) -> bytes | None:
    """The production's status page if it is a regular file there, read without following
    a symlink (neither the page nor the production directory's own entry); else None."""
    try:
        folder = os.open(production, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = os.open(PAGE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError:  # absent, or a symlink (ELOOP)
        return None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # a FIFO or device would block or leak
            return None
        return fh.read()


def make_handler(roots: list[Path] | None, token: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the terminal shows the URL only
            pass

        def _authorised(self, query: dict) -> bool:
            given = query.get("token", [""])[0]
            cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";")
                           if "=" in c)
            return secrets.compare_digest(given or cookies.get(COOKIE, ""), token)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if not self._authorised(urllib.parse.parse_qs(url.query)):
                self.send_error(403, "this server needs the token it printed when it started")
                return
            found = productions(roots)
            parts = [p for p in url.path.split("/") if p]
            if not parts:
                rows = "".join(f"<li><a href='/{html.escape(n)}/'>{html.escape(n)}</a> "
                               f"<span>{html.escape(str(p))}</span></li>" for n, p in sorted(found.items()))
                body = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>timecal "
                        f"productions</title></head><body><h1>timecal productions</h1><ul>{rows}"
                        "</ul></body></html>").encode()
            elif len(parts) == 1 and parts[0] in found and (page := read_page(found[parts[0]])) is not None:
                body = page
            else:
                self.send_error(404, "no such production")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Set-Cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve_forever(roots: list[Path] | None, port: int = 0) -> int:
    token = secrets.token_urlsafe(24)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(roots, token))
    print(f"timecal: serving status pages on http://127.0.0.1:{server.server_address[1]}/?token={token}"
          f"\ntimecal: from your laptop: ssh -L {server.server_address[1]}:127.0.0.1:"
          f"{server.server_address[1]} THIS_HOST, then open that address; Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
