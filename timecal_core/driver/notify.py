"""A message when it matters: the production completed, tasks failed for good, the driver
stopped. Configured in timerc; nothing is sent without it.

```
[notify]
mail = you@example.org, colleague@example.org
# smtp_host = localhost      smtp_port = 25 (465 with smtp_tls = ssl, 587 with starttls)
# smtp_tls = no | starttls | ssl
# smtp_cafile = /etc/pki/site-ca.pem   (default: the system's certificate authorities)
# smtp_user = jdoe           smtp_password_file = ~/.config/timecal/smtp-password (0600)
# sender = timecal@host      (default: USER@host)
command = /path/to/program --its --arguments
```

``command`` is run with the event as JSON on its standard input, its arguments split like
a shell would but never through a shell. Failures for good are batched: at most one
message per interval. Sending never stops a production: a failure to send is logged in the
driver's log and noted in the ledger's history.

Whom the password goes to: with ``starttls`` or ``ssl`` the server's certificate is
verified (``ssl.create_default_context``: a known authority, or ``smtp_cafile``, and the
host's name) before anything else is said, so a server that cannot prove it is
``smtp_host`` never sees the login: the message is not sent, one line says why. A
password is never sent in clear to another host (``smtp_tls = no`` with ``smtp_user`` is
refused unless the server is on this machine's loopback), and a password file that group or
others may read is refused, as ssh refuses such a key.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import logging
import shlex
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection
from ..contract.trust import check_secret_file

log = logging.getLogger("timecal.notify")
SECTION = "notify"
TLS_MODES = ("no", "starttls", "ssl")
NOTIFY = SettingsSection(SECTION, (
    Setting("mail", "text", help="addresses to mail, separated by commas"),
    Setting("command", "text", help="a program (with its arguments, split as a shell would, never run "
            "by one) that gets each event as JSON on its standard input"),
    Setting("smtp_host", "text", "localhost", "the SMTP server"),
    Setting("smtp_port", "integer", "25; 587 with starttls, 465 with ssl", "its port", minimum=1),
    Setting("smtp_tls", "choice", "no", "how the connection is encrypted", choices=TLS_MODES),
    Setting("smtp_user", "text", help="log in as this user"),
    Setting("smtp_password_file", "path", help="a file holding the password (readable by you only: "
            "one others can read is refused)"),
    Setting("smtp_cafile", "path", help="the certificate authority (PEM) the server's certificate is "
            "verified with, when the system's do not know it (starttls, ssl)"),
    Setting("sender", "text", "USER@host", "the From address"),
), help="A message when the production completes, when tasks fail for good (at most one per "
        "interval) and when the driver stops. Nothing is sent without this section.")
COMMAND_TIMEOUT = 60


class Notifier:
    """Turns the driver's events into mails and/or a program's input."""

    def __init__(self, settings: dict[str, str], production: Path, note: Callable[[str], None]):
        self.production = Path(production)
        self.note = note
        settings = NOTIFY.check(settings)
        self.mail = [a.strip() for a in settings.get("mail", "").split(",") if a.strip()]
        self.command = shlex.split(settings.get("command", ""))
        self.host = settings.get("smtp_host") or NOTIFY.default("smtp_host")
        self.tls = settings.get("smtp_tls") or NOTIFY.default("smtp_tls")
        default_port = {"no": 25, "starttls": 587, "ssl": 465}[self.tls]
        self.port = int(settings.get("smtp_port") or default_port)
        self.user = settings.get("smtp_user", "")
        self.password_file = settings.get("smtp_password_file", "")
        self.cafile = settings.get("smtp_cafile", "")
        if self.user and self.tls == "no" and not _loopback(self.host):
            raise UserError(f"timerc [notify] smtp_user = {self.user} with smtp_tls = no would send "
                            f"the password in clear to {self.host}; set smtp_tls = starttls (or ssl)")
        if self.user and self.password_file:
            check_secret_file(self.password_file, "timerc [notify] smtp_password_file")
        if self.cafile and not Path(self.cafile).expanduser().is_file():
            raise UserError(f"timerc [notify] smtp_cafile = {self.cafile}: no such file")
        self.sender = settings.get("sender") or f"{getpass.getuser()}@{socket.getfqdn()}"
        self._failed: list[str] = []
        self._failed_tasks = 0

    @property
    def active(self) -> bool:
        return bool(self.mail or self.command)

    # ------------------------------------------------------------------ events
    def failed_for_good(self, text: str | None, tasks: int = 1) -> None:
        """``tasks`` failed for good; ``text`` says why, or is None when the same error was
        said before (the engine says an error once and counts the others): the mail's count
        is of tasks, not of lines."""
        self._failed_tasks += tasks
        if text:
            self._failed.append(text)

    def flush(self) -> None:
        """Once per interval: one message for every task that failed for good since the last."""
        if self._failed_tasks:
            tasks, failed = self._failed_tasks, self._failed
            self._failed_tasks, self._failed = 0, []
            details = failed or ["the same error as before (the monitor's 'errors' shows every task)"]
            self.send("failed", f"{tasks} task(s) failed for good", "\n".join(details))

    def send(self, event: str, summary: str, details: str = "") -> None:
        if not self.active:
            return
        payload = {"event": event, "summary": summary, "details": details,
                   "production": str(self.production), "host": socket.gethostname(),
                   "time": time.time()}
        if self.mail:
            self._mail(payload)
        if self.command:
            self._run(payload)

    # ------------------------------------------------------------------ channels
    def _mail(self, payload: dict) -> None:
        message = EmailMessage()
        message["Subject"] = f"timecal {self.production.name}: {payload['summary']}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.mail)
        message.set_content(f"{payload['summary']}\n\nproduction {payload['production']} on "
                            f"{payload['host']}\n\n{payload['details']}\n")
        try:
            context = self._tls_context()
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=30, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=30)
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=context)  # no STARTTLS offered: SMTPNotSupportedError
                if self.user:
                    smtp.login(self.user, self._password())
                smtp.send_message(message)
        except ssl.SSLCertVerificationError as exc:
            line = (f"notify: mail not sent: the certificate of {self.host}:{self.port} does not "
                    f"verify ({exc.verify_message or exc.reason}); nothing was sent to it, no login. "
                    f"Check smtp_host, or name the site's CA in timerc [notify] smtp_cafile")
            log.warning("%s", line)
            self.note(line)
        except (OSError, smtplib.SMTPException, UserError) as exc:
            log.warning("notify: mail to %s failed: %s", message["To"], exc)
            self.note(f"notify: mail failed: {type(exc).__name__}: {exc}")

    def _tls_context(self) -> ssl.SSLContext | None:
        """Verifies the server's certificate and name: the system's authorities, or
        ``smtp_cafile``."""
        if self.tls == "no":
            return None
        return ssl.create_default_context(cafile=str(Path(self.cafile).expanduser()) if self.cafile else None)

    def _password(self) -> str:
        """Read when needed (it may change during a days-long production), checked again."""
        if not self.password_file:
            return ""
        path = check_secret_file(self.password_file, "timerc [notify] smtp_password_file")
        return path.read_text().strip()

    def _run(self, payload: dict) -> None:
        try:
            done = subprocess.run(self.command, input=json.dumps(payload), text=True,
                                  capture_output=True, timeout=COMMAND_TIMEOUT)
            if done.returncode:
                raise OSError(f"exit code {done.returncode}: {done.stderr.strip()[-200:]}")
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("notify: command %s failed: %s", self.command[0], exc)
            self.note(f"notify: command failed: {exc}")


def _loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback (a literal address, or localhost):
    a password sent there in clear never leaves the machine."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
