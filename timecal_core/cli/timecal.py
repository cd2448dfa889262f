"""``timecal``: one shell for every production. With no arguments it opens the home
shell (a cmd2 shell over the productions under timerc's ``[paths] production`` and any
directory given): list them with their drivers alive or dead, start one (a driver of its
own, then its monitor), attach, stop, read a script's parameters, and whatever plugins add
(the analysis plugin's ``plot`` and ``calibrate``). ``timecal attach|stop|serve`` do one
thing from the command line.

Starting and attaching run the same commands a user would type (``BXRun``, ``timecal
attach``) as child processes on this terminal: the monitor then is exactly the one of a
terminal, and a crash in it cannot take the home shell down."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..config.timerc import load_timerc
from ..contract.errors import UserError
from ..plan.grid import production_dir
from . import vocabulary
from .command_errors import run_cli

PRODUCTION_HELP = "production directory (relative: under timerc [paths] production)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timecal", description="Act on running productions.")
    vocabulary.add_standard(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    home = sub.add_parser("shell", help="the home shell (also: timecal with no command)")
    home.add_argument("directories", nargs="*", metavar="DIR",
                      help="more production directories or folders of productions")
    attach = sub.add_parser("attach", help="open the monitor of a production's running driver")
    attach.add_argument("production", metavar="PRODUCTION", help=PRODUCTION_HELP)
    stop = sub.add_parser("stop", help="stop a production's driver (tasks resume on the next run)")
    stop.add_argument("production", metavar="PRODUCTION", help=PRODUCTION_HELP)
    serve = sub.add_parser("serve", help="serve the status pages of productions on 127.0.0.1 "
                                         "(for an SSH tunnel), behind a secret token")
    serve.add_argument("productions", nargs="*", metavar="PRODUCTION",
                       help=PRODUCTION_HELP + "; default: every one under [paths] production")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    for command in (home, attach, stop, serve):
        vocabulary.add_standard(command, subcommand=True)
    return p


def _out(given: str):
    return production_dir(given, load_timerc().optional_path("production"))


def _stop(out) -> int:
    from ..control.unix_socket import SocketChannel, describe_driver, driver_alive, read_record

    record = read_record(out)
    if not driver_alive(record):
        raise UserError(f"{out}: {describe_driver(record)}")
    channel = SocketChannel(record["socket"])
    try:
        seen = channel.request("updates", after=0)["last"]
        channel.request("stop", reason="stopped by the user (timecal stop)")
        print(f"timecal: asked the driver (PID {record['pid']}) to stop; tasks resume on the next run",
              flush=True)
        _show_end(channel, seen)
    finally:
        channel.close()
    deadline = time.monotonic() + 30  # it lets go of the production: --status then says so
    while driver_alive(read_record(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return 0


def _show_end(channel, seen: int, patience: float = 120.0) -> None:
    """The stopping driver's last lines (what is left to run, how to resume), as an attached
    monitor shows them; quietly nothing if it is gone before it could say them."""
    from ..control.requests import ControlError

    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            answer = channel.request("updates", after=seen)
        except ControlError:
            return
        seen = answer["last"]
        for item in answer["items"]:
            if item["kind"] == "ended":
                return
            if item["kind"] == "final":
                print(item["text"], flush=True)
        time.sleep(0.2)


def _dispatch(args) -> int:
    from .detach import cmd_attach

    if args.command == "attach":
        return cmd_attach(_out(args.production))
    if args.command == "stop":
        return _stop(_out(args.production))
    if args.command == "serve":
        from ..monitor.http_pages import serve_forever

        return serve_forever([_out(o) for o in args.productions] or None, args.port)
    from ..monitor.home_shell import HomeShell

    extra = [Path(d).expanduser().resolve() for d in getattr(args, "directories", [])]
    HomeShell(extra).cmdloop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("timecal", lambda: _dispatch(args), verbose=args.verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
