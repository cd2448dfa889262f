"""A message when it matters, received for real: an SMTP server (aiosmtpd) on 127.0.0.1
gets the mails of a real BXRun, and a program gets the event as JSON on its stdin."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a test dependency")

BXRUN = str(Path(sys.executable).with_name("BXRun"))


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode(errors="replace")))
        return "250 OK"


@pytest.fixture
def smtp():
    import socket

    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_mail_for_failures_and_the_end_and_a_program_with_json(tmp_path, smtp):
    inbox, port = smtp
    events = tmp_path / "events.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text("import sys\nopen(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')\n")
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
                      f"[local]\nworkers = 2\n[notify]\nmail = physicist@example.org\n"
                      f"smtp_host = 127.0.0.1\nsmtp_port = {port}\n"
                      f"command = {sys.executable} {hook} '{events}'\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "grid.yml").write_text("index: [1, 2]\nexit_code: [0, 7]\n")
    out = subprocess.run([BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                          "-o", "n", "--interval", "1", "--max-retries", "1"], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stdout + out.stderr
    subjects = [next(line for line in text.splitlines() if line.startswith("Subject:"))
                for _, text in inbox.messages]
    assert all(to == ["physicist@example.org"] for to, _ in inbox.messages)
    import re

    batches = [int(m.group(1)) for s in subjects
               if (m := re.match(r"Subject: timecal n: (\d+) task\(s\) failed for good", s))]
    assert sum(batches) == 2, subjects  # batched per interval: one or two messages
    assert any(s.startswith("Subject: timecal n: driver ended") for s in subjects), subjects
    failed_mail = next(t for _, t in inbox.messages if "failed for good" in t.split("\n\n")[0])
    assert "exited with code 7" in failed_mail
    received = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in received] == ["failed"] * len(batches) + ["stopped"]
    assert received[0]["production"] == str(tmp_path / "prod" / "n")


def test_a_complete_production_says_so(tmp_path, smtp):
    inbox, port = smtp
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\n[local]\nworkers = 1\n"
                      f"[notify]\nmail = a@example.org, b@example.org\nsmtp_host = 127.0.0.1\n"
                      f"smtp_port = {port}\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "grid.yml").write_text("index: [1]\n")
    out = subprocess.run([BXRUN, "--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                          "-o", "c", "--interval", "1"], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    ((to, text),) = inbox.messages
    assert to == ["a@example.org", "b@example.org"]
    assert "Subject: timecal c: production complete: 1 tasks done" in text
