"""``timecal``: the commands that act on productions rather than start them. Today:
``timecal attach OUT`` (the monitor of a running driver, from any terminal),
``timecal stop OUT`` and ``timecal serve`` (status pages for an SSH tunnel); the home shell
over every production is still to come."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .config import load_timerc
from .errors import UserError
from .exits import run_cli
from .grid import production_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timecal", description="Act on running productions.")
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on errors")
    p.add_argument("--version", action="version", version=f"timecal {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    attach = sub.add_parser("attach", help="open the monitor of a production's running driver")
    attach.add_argument("output", metavar="OUT", help="production directory (relative: under "
                                                      "timerc [paths] production)")
    stop = sub.add_parser("stop", help="stop a production's driver (tasks resume on the next run)")
    stop.add_argument("output", metavar="OUT")
    serve = sub.add_parser("serve", help="serve the status pages of productions on 127.0.0.1 "
                                         "(for an SSH tunnel), behind a secret token")
    serve.add_argument("outputs", nargs="*", metavar="OUT",
                       help="productions (default: every one under timerc [paths] production)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    return p


def _out(given: str):
    return production_dir(given, load_timerc().optional_path("production"))


def _stop(out) -> int:
    from .controlsocket import SocketChannel, describe_driver, driver_alive, read_record

    record = read_record(out)
    if not driver_alive(record):
        raise UserError(f"{out}: {describe_driver(record)}")
    channel = SocketChannel(record["socket"])
    try:
        channel.request("stop", reason="stopped by the user (timecal stop)")
    finally:
        channel.close()
    print(f"timecal: asked the driver (PID {record['pid']}) to stop; tasks resume on the next run")
    return 0


def _dispatch(args) -> int:
    from .cli import cmd_attach

    if args.command == "attach":
        return cmd_attach(_out(args.output))
    if args.command == "stop":
        return _stop(_out(args.output))
    if args.command == "serve":
        from .serve import serve_forever

        return serve_forever([_out(o) for o in args.outputs] or None, args.port)
    raise UserError("give a command: attach OUT, stop OUT (see timecal -h)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("timecal", lambda: _dispatch(args), verbose=args.verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
