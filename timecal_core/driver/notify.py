"""A message when it matters: the production completed, tasks failed for good, the driver
stopped. Configured in timerc; nothing is sent without it.

```
[notify]
mail = you@example.org, colleague@example.org
# smtp_host = localhost      smtp_port = 25 (465 with smtp_tls = ssl, 587 with starttls)
# smtp_tls = no | starttls | ssl
# smtp_user = jdoe           smtp_password_file = ~/.config/timecal/smtp-password (0600)
# sender = timecal@host      (default: USER@host)
command = /path/to/program --its --arguments
```

``command`` is run with the event as JSON on its standard input, its arguments split like
a shell would but never through a shell. Failures for good are batched: at most one
message per interval. Sending never stops a production: a failure to send is logged in the
driver's log and noted in the ledger's history.
"""

from __future__ import annotations

import getpass
import json
import logging
import shlex
import smtplib
import socket
import subprocess
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection

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
    Setting("smtp_password_file", "path", help="a file holding the password (readable by you only)"),
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
        self.sender = settings.get("sender") or f"{getpass.getuser()}@{socket.getfqdn()}"
        self._failed: list[str] = []

    @property
    def active(self) -> bool:
        return bool(self.mail or self.command)

    # ------------------------------------------------------------------ events
    def failed_for_good(self, text: str) -> None:
        self._failed.append(text)

    def flush(self) -> None:
        """Once per interval: one message for every task that failed for good since the last."""
        if self._failed:
            failed, self._failed = self._failed, []
            self.send("failed", f"{len(failed)} task(s) failed for good", "\n".join(failed))

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
            smtp_class = smtplib.SMTP_SSL if self.tls == "ssl" else smtplib.SMTP
            with smtp_class(self.host, self.port, timeout=30) as smtp:
                if self.tls == "starttls":
                    smtp.starttls()
                if self.user:
                    password = Path(self.password_file).expanduser().read_text().strip() \
                        if self.password_file else ""
                    smtp.login(self.user, password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notify: mail to %s failed: %s", message["To"], exc)
            self.note(f"notify: mail failed: {type(exc).__name__}: {exc}")

    def _run(self, payload: dict) -> None:
        try:
            done = subprocess.run(self.command, input=json.dumps(payload), text=True,
                                  capture_output=True, timeout=COMMAND_TIMEOUT)
            if done.returncode:
                raise OSError(f"exit code {done.returncode}: {done.stderr.strip()[-200:]}")
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("notify: command %s failed: %s", self.command[0], exc)
            self.note(f"notify: command failed: {exc}")
