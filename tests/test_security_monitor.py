"""The monitor with TLS, as a user drives it (the real BXRun in a pseudo-terminal): ``client``
says how the cluster is protected, and the ``debug`` console's own client (the monitor is a
process of its own: it got the production's client credentials over the owner-only control
channel) runs code on the workers, while a client without them is refused."""

import os
import sys
from pathlib import Path

import pexpect

BXRUN = str(Path(sys.executable).with_name("BXRun"))
PROMPT = r"timecal \d+/\d+>"


def test_client_and_debug_commands_use_the_credentials(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\n[local]\nworkers = 1\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state"),
           "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}
    (tmp_path / "grid.yml").write_text("index: [1]\nseconds: 60\n")
    child = pexpect.spawn(BXRUN, ["--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "scan"],
                          env=env, encoding="utf-8", dimensions=(50, 220), timeout=60, cwd=str(tmp_path))
    try:
        child.expect(PROMPT)
        child.sendline("client")
        child.expect(r"scheduler tls://127\.0\.0\.1:\d+")
        child.expect("security TLS, mutual authentication, self-signed certificate of this production")
        child.expect(PROMPT)
        child.sendline("debug")
        child.expect(">>> ")
        child.sendline("from distributed import Client; from distributed.security import Security")
        child.expect(">>> ")
        child.sendline("print('answer', *client.run(sum, [20, 22]).values())")  # the worker is busy
        child.expect("answer 42")
        child.expect(">>> ")
        child.sendline("try:\n    Client(scheduler, security=Security.temporary(), timeout='3s')\n"
                       "except OSError as e:\n    print('refused', type(e).__name__)\n")
        child.expect(r"refused \w+Error", timeout=30)
        child.expect(">>> ")
        child.sendline("exit()")  # returns to the monitor
        child.expect("back to the monitor")
        child.expect(PROMPT)
        child.sendline("exit")
        child.expect(r"stop them")
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
