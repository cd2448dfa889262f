"""``timecal serve``: every production's ``status.html`` over HTTP on 127.0.0.1, for an SSH
tunnel (``ssh -L 8765:127.0.0.1:8765 login-node``).

A login node is shared: the pages are served only with a secret token that the server
prints for its owner (in the URL the first time, then as a cookie), never on an address
other than the loopback, and only the status pages (no other file of the productions)."""

from __future__ import annotations

import html
import http.server
import secrets
import urllib.parse
from pathlib import Path

from ..config.timerc import load_timerc
from ..contract.errors import UserError
from ..views.status_html import PAGE

COOKIE = "timecal_token"


def productions(roots: list[Path] | None) -> dict[str, Path]:
    """Name -> production directory that has a status page."""
    if roots is None:
        base = load_timerc().optional_path("production")
        if base is None or not base.is_dir():
            raise UserError("timecal serve: give production directories, or set timerc "
                            "[paths] production")
        roots = sorted(p for p in base.iterdir() if p.is_dir())
    return {p.name: p for p in roots if (p / PAGE).is_file()}


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
            elif len(parts) == 1 and parts[0] in found:
                body = (found[parts[0]] / PAGE).read_bytes()
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
