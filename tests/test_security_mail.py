"""Mail verifies whom it talks to (issue 23): a real SMTP server (aiosmtpd) on 127.0.0.1
with STARTTLS, or implicit TLS, and certificates made for the test.

The issue's server had a self-signed certificate: timecal sent ``AUTH PLAIN jdoe
S3cretSMTPpass`` to it. Here the server writes down every AUTH command that reaches it,
whatever comes of it, so "no AUTH reached it" is observed on the server's side.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.site_ca import _write_site_ca

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a test dependency")
from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402

BXRUN = str(Path(sys.executable).with_name("BXRun"))
PASSWORD = "S3cretSMTPpass"


class Server:
    """What the SMTP server saw: AUTH commands (before any check), logins, messages."""

    def __init__(self):
        self.auth_commands: list[str] = []
        self.logins: list[tuple[str, str]] = []
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode(errors="replace"))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


class RecordingController(aiosmtpd.Controller):
    def factory(self):
        seen = self.handler

        class RecordingSMTP(SMTP):
            async def smtp_AUTH(self, arg):
                seen.auth_commands.append(arg)
                return await super().smtp_AUTH(arg)

        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_context(files: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["cert"], files["key"])
    return context


@pytest.fixture
def starttls_server(tmp_path):
    """STARTTLS required before AUTH, a certificate for 127.0.0.1 signed by a CA of the
    test (unknown to the system): what a site's own mail relay looks like to timecal."""
    (tmp_path / "smtp-ca").mkdir()
    files = _write_site_ca(tmp_path / "smtp-ca", name="smtp", hosts=("127.0.0.1", "localhost"))
    server, port = Server(), _free_port()
    controller = RecordingController(server, hostname="127.0.0.1", port=port, tls_context=_server_context(files),
                                     require_starttls=True, auth_require_tls=True,
                                     authenticator=server.authenticate)
    controller.start()
    try:
        yield server, port, files
    finally:
        controller.stop()


def _production(tmp_path: Path, notify: str) -> tuple[subprocess.CompletedProcess, Path]:
    password = tmp_path / "smtp-password"
    if not password.exists():
        password.write_text(PASSWORD + "\n")
        password.chmod(0o600)
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\n[local]\nworkers = 1\n[notify]\n"
                      f"mail = physicist@example.org\nsmtp_user = jdoe\nsmtp_password_file = {password}\n{notify}")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "grid.yml").write_text("index: [1]\n")
    res = subprocess.run([BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "mailed",
                          "--interval", "1"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=180)
    return res, tmp_path / "prod" / "mailed"


def _notes(out: Path) -> list[str]:
    from timecal_core.ledger.sqlite_ledger import Ledger

    ledger = Ledger.open_readonly(out)
    try:
        return [e.detail for e in ledger.production_events(100)]
    finally:
        ledger.close()


def test_a_server_whose_certificate_does_not_verify_never_sees_the_login(tmp_path, starttls_server):
    server, port, _files = starttls_server
    res, out = _production(tmp_path, f"smtp_host = 127.0.0.1\nsmtp_port = {port}\nsmtp_tls = starttls\n")
    assert res.returncode == 0, res.stdout + res.stderr  # sending never stops a production
    assert server.auth_commands == [] and server.logins == [] and server.messages == []
    refused = [n for n in _notes(out) if n.startswith("notify: mail not sent")]
    assert len(refused) == 1, _notes(out)
    assert f"the certificate of 127.0.0.1:{port} does not verify" in refused[0]
    assert "smtp_cafile" in refused[0] and "\n" not in refused[0]
    log = (out / "logs" / "driver.log").read_text()
    assert refused[0] in log
    assert PASSWORD not in log and PASSWORD not in res.stdout + res.stderr


def test_with_smtp_cafile_naming_its_ca_the_mail_goes_through(tmp_path, starttls_server):
    server, port, files = starttls_server
    res, out = _production(tmp_path, f"smtp_host = 127.0.0.1\nsmtp_port = {port}\nsmtp_tls = starttls\n"
                                     f"smtp_cafile = {files['ca']}\n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert server.logins == [("jdoe", PASSWORD)]
    (message,) = server.messages
    assert "Subject: timecal mailed: production complete: 1 tasks done" in message
    assert not [n for n in _notes(out) if n.startswith("notify: mail")]


def test_implicit_tls_to_a_certificate_for_another_name_is_refused(tmp_path):
    """``smtp_tls = ssl``: a certificate from the right CA but for another host (what an
    interceptor holding any certificate of that CA would show) stops the message too."""
    from timecal_core.driver.notify import Notifier

    (tmp_path / "ca").mkdir()
    files = _write_site_ca(tmp_path / "ca", name="smtp", hosts=("smtp.other.example",))
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    server, port = Server(), _free_port()
    controller = RecordingController(server, hostname="127.0.0.1", port=port, ssl_context=_server_context(files),
                                     auth_require_tls=False, authenticator=server.authenticate)
    controller.start()
    notes: list[str] = []
    try:
        notifier = Notifier({"mail": "a@example.org", "smtp_host": "127.0.0.1", "smtp_port": str(port),
                             "smtp_tls": "ssl", "smtp_cafile": str(files["ca"]), "smtp_user": "jdoe",
                             "smtp_password_file": str(password)}, tmp_path, note=notes.append)
        notifier.send("complete", "done")
    finally:
        controller.stop()
    assert server.auth_commands == [] and server.messages == []
    (note,) = notes
    assert note.startswith(f"notify: mail not sent: the certificate of 127.0.0.1:{port} does not verify")
    assert "Hostname mismatch" in note or "IP address mismatch" in note, note


def test_a_password_file_others_can_read_is_refused_before_anything_is_written(tmp_path):
    password = tmp_path / "smtp-password"
    password.write_text(PASSWORD)
    password.chmod(0o644)
    res, out = _production(tmp_path, "smtp_host = smtp.example.org\nsmtp_tls = starttls\n")
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"smtp_password_file = {password} is readable by others (mode 0644); run 'chmod 600 {password}'" in line
    assert not out.exists()


def test_a_password_is_never_sent_in_clear_to_another_host(tmp_path):
    from timecal_core.driver.notify import Notifier

    res, out = _production(tmp_path, "smtp_host = smtp.example.org\nsmtp_tls = no\n")
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "smtp_tls = no would send the password in clear to smtp.example.org" in line
    assert not out.exists()
    for host in ("127.0.0.1", "localhost", "::1"):  # the machine's own relay: it never leaves it
        Notifier({"mail": "a@b", "smtp_host": host, "smtp_tls": "no", "smtp_user": "jdoe"}, tmp_path,
                 note=print)
