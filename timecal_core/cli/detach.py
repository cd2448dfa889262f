"""A driver of its own: ``BXRun --detach`` starts the same command as a driver in a new
session (no terminal, output to ``OUT/logs/driver.log``) and returns once it serves its
control channel; ``BXRun --attach`` / ``timecal attach`` open a monitor on a running one."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..contract.errors import UserError


DETACHED_WAIT = 120.0  # s a detached driver may take to plan, lock and open its channel


def start_detached(out: Path, argv: list[str], quiet: bool = False) -> int | None:
    """Run this same BXRun command as a driver of its own (new session, no terminal,
    output to OUT/logs/driver.log). None once it serves its control channel; its exit code
    if it ended at once (nothing left to do)."""
    import subprocess

    from ..contract.trust import open_append, owned_dir
    from ..control.unix_socket import driver_alive, read_record
    from ..driver.driver_log import driver_log_path
    from .production_dir import make_production

    log = driver_log_path(out)
    make_production(out)
    owned_dir(log.parent)
    before = (read_record(out) or {}).get("started")
    offset = log.stat().st_size if log.exists() else 0
    child_argv = [a for a in argv if a != "--detach"]
    with os.fdopen(open_append(log), "ab") as sink:
        child = subprocess.Popen([sys.executable, "-m", "timecal_core.cli.bxrun", *child_argv],
                                 stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True)
    deadline = time.monotonic() + DETACHED_WAIT
    while time.monotonic() < deadline:
        record = read_record(out)
        if record and record.get("pid") == child.pid and record.get("started") != before \
                and driver_alive(record):
            if quiet:
                print(f"BXRun: the driver runs on its own (PID {child.pid}, log {log}); "
                      "'detach' or closing this terminal leaves it running")
            else:
                print(f"BXRun: driver running on its own (PID {child.pid}); log {log}")
                print(f"BXRun: follow it with: timecal attach {out}   (or BXRun --attach -o {out})")
            return None
        code = child.poll()
        if code is not None:
            with open(log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace").rstrip()
            if code == 0:  # nothing was left to do: it finished at once
                print(text)
                return 0
            print("\n".join(text.splitlines()[-8:]), file=sys.stderr)
            raise UserError(f"the detached driver ended at once (exit {code}); its log: {log}")
        time.sleep(0.2)
    raise UserError(f"the detached driver (PID {child.pid}) did not open its control channel "
                    f"within {DETACHED_WAIT:.0f} s; its log: {log}")


def cmd_attach(out: Path) -> int:
    from ..control.unix_socket import SocketChannel, describe_driver, driver_alive, read_record
    from ..monitor.monitor_shell import ShellMonitor

    record = read_record(out)
    if not driver_alive(record):
        if not (out / "infiles" / "config.yml").is_file():  # nothing to resume: how to start
            raise UserError(f"{out}: no production here (no infiles/config.yml); start one with: "
                            f"BXRun --script SCRIPT --yaml GRID.yml -o {out}")
        raise UserError(f"{out}: {describe_driver(record)}; resume it with: "
                        f"BXRun -o {out} --detach")
    channel = SocketChannel(record["socket"])
    monitor = ShellMonitor()
    try:
        code = monitor(channel)
    finally:
        channel.close()
    if not monitor.detached:  # the driver ended: return once it let go of the production
        deadline = time.monotonic() + 30
        while driver_alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)
    return code
