"""The home shell (``timecal``): every production at a glance, and the commands to start,
follow and stop them. It reads productions from disk (ledger read-only, driver record) and
talks to drivers only through the same commands a user would type, so it holds no state
that a dead driver or a second shell could contradict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cmd2
from cmd2 import Cmd2ArgumentParser, Completions, with_argparser

from ..config.parameter_table import parameter_table
from ..config.timerc import load_timerc
from ..contract.plugins import describe, get_registry
from ..control.unix_socket import driver_alive, read_record
from ..ledger.records import (CANCELLED, DONE, ERROR, FAILED, PENDING, PLANNED, RUNNING,
                              LedgerUnavailable)
from ..ledger.sqlite_ledger import LEDGER_NAME, Ledger
from ..textformat import render_table
from .shell_parsers import HIDDEN_BUILTINS, history_path


def _bin(name: str) -> str:
    """The console script of this installation (the venv's, not whatever PATH finds)."""
    here = Path(sys.executable).with_name(name)
    return str(here) if here.exists() else (shutil.which(name) or name)


def find_productions(roots: list[Path]) -> dict[str, Path]:
    """Name -> directory of every production (a directory with a ledger) in ``roots``
    (each a production, or a folder of them)."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        candidates = [root] if (root / LEDGER_NAME).is_file() else sorted(root.iterdir())
        for path in candidates:
            if (path / LEDGER_NAME).is_file():
                name = path.name if path.name not in found else str(path)
                found[name] = path
    return found


def production_row(name: str, path: Path) -> tuple:
    record = read_record(path)
    script = "?"
    try:
        script = json.loads((path / "infiles" / "production.json").read_text())["script"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        ledger = Ledger.open_readonly(path)
        try:
            counts = ledger.counts()
            last = ledger.last_events(1)
        finally:
            ledger.close()
    except LedgerUnavailable:
        return (name, script, "?", "ledger unreadable", "", "", "")
    total = sum(counts.values())
    when = max([e.time for e in last] + [float((record or {}).get("heartbeat") or 0)])
    if driver_alive(record):
        driver = "alive"
    elif record and not record.get("stopped"):
        driver = "dead"
    else:
        driver = "-"
    not_run = counts[PLANNED] + counts[PENDING] + counts[CANCELLED]
    return (name, script, total,
            f"{counts[DONE]}/{counts[FAILED] + counts[ERROR]}/{counts[RUNNING]}/{not_run}",
            driver, time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "")


def _productions_completer(app: HomeShell, text: str, *_args) -> Completions:
    return Completions.from_values(sorted(n for n in app.productions() if n.startswith(text)))


def _scripts_completer(app: HomeShell, text: str, *_args) -> Completions:
    return Completions.from_values(sorted(n for n in get_registry().scripts if n.startswith(text)))


def _one_production(description: str):
    def factory() -> Cmd2ArgumentParser:
        parser = Cmd2ArgumentParser(description=description)
        parser.add_argument("production", completer=_productions_completer,
                            help="a name from 'productions', or a directory")
        return parser
    return factory


def _params_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="The parameters of a production script: type, "
                                            "default, unit, allowed values, help (the table "
                                            "of BXRun --script NAME --help).")
    parser.add_argument("script", completer=_scripts_completer)
    return parser


class HomeShell(cmd2.Cmd):
    """``help`` lists the commands, ``help CMD`` explains one."""

    DEFAULT_CATEGORY = "Productions"

    def __init__(self, extra: list[Path] | None = None, history_file: Path | None = None):
        super().__init__(allow_cli_args=False, auto_suggest=False,
                         persistent_history_file=str(history_file or history_path().with_name("home-history")))
        self.hidden_commands.extend(HIDDEN_BUILTINS)
        base = load_timerc().optional_path("production")
        self.roots = ([base] if base is not None else []) + list(extra or [])
        self.prompt = "timecal> "
        self.intro = ("timecal: 'productions' lists them, 'run' starts one, 'attach NAME' follows "
                      "it, 'help' lists the rest")
        for reg in get_registry().commands.values():
            self.register_command_set(reg.item.command_set())

    def productions(self) -> dict[str, Path]:
        return find_productions(self.roots)

    def _resolve(self, given: str) -> Path | None:
        found = self.productions()
        if given in found:
            return found[given]
        path = Path(given).expanduser()
        if (path / LEDGER_NAME).is_file():
            return path.resolve()
        self.perror(f"{given}: no such production ('productions' lists them)")
        return None

    def _run(self, *argv: str) -> int:
        """A timecal command on this terminal, as if typed."""
        return subprocess.run(list(argv), env=os.environ.copy()).returncode

    @with_argparser(lambda: Cmd2ArgumentParser(description="Every production: script, tasks of "
                    "its grid, how many are done/failed/running/not run yet (planned, pending "
                    "or cancelled), whether its driver is alive, last activity."))
    def do_productions(self, _args) -> None:
        rows = [production_row(n, p) for n, p in sorted(self.productions().items())]
        if not rows:
            self.poutput("no production yet under " + ", ".join(map(str, self.roots)))
            return
        self.poutput(render_table(("production", "script", "tasks", "done/failed/running/not run",
                                   "driver", "last activity"), rows))

    def do_run(self, statement) -> None:
        """Start a production: the options of BXRun (e.g. run --script cbcsim --yaml scan.yml
        --dask local -o scan1). Its driver runs on its own; the monitor opens at once
        ('detach' comes back here)."""
        self._run(_bin("BXRun"), *statement.arg_list)

    @with_argparser(_one_production("Open the monitor of a production's running driver."))
    def do_attach(self, args) -> None:
        path = self._resolve(args.production)
        if path is not None:
            self._run(_bin("timecal"), "attach", str(path))

    @with_argparser(_one_production("The ledger's view of a production (BXRun --status)."))
    def do_status(self, args) -> None:
        path = self._resolve(args.production)
        if path is not None:
            self._run(_bin("BXRun"), "--status", "-o", str(path))

    @with_argparser(_one_production("Stop a production's driver (tasks resume on the next run)."))
    def do_stop(self, args) -> None:
        path = self._resolve(args.production)
        if path is not None:
            self._run(_bin("timecal"), "stop", str(path))

    @with_argparser(_params_parser)
    def do_params(self, args) -> None:
        try:
            script = get_registry().script(args.script).item
        except Exception as exc:
            self.perror(str(exc))
            return
        self.poutput(parameter_table(script))  # the table of BXRun --script NAME --help

    @with_argparser(lambda: Cmd2ArgumentParser(description="Installed plugins and what they register."))
    def do_plugins(self, _args) -> None:
        self.poutput(describe(get_registry()))

    def do_exit(self, _args) -> bool:
        """Leave the home shell (drivers go on)."""
        return True

    do_quit = do_exit

    def do__eof(self, _args) -> bool:
        self.poutput("")
        return True
