"""The monitor's command-line grammar: its cmd2 argument parsers (module-level factories,
as cmd2 wants them) and completers (task ids, states, selection terms, map axes), and what
both shells share (the history file, the built-ins they hide). No commands run here."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cmd2
from cmd2 import Choices, Cmd2ArgumentParser, CompletionItem, Completions

from ..contract.trust import private_dir
from ..control.requests import ControlError
from ..ledger.records import STATES, STATE_HELP
from ..views.selection import is_term

LOG_LINES = 30
TABLE_LIMIT = 50


HIDDEN_BUILTINS = ("alias", "macro", "edit", "run_pyscript", "run_script", "shell", "shortcuts")


def history_path() -> Path:
    """Shared by every production of the user, like a shell's history."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base).expanduser() / "timecal" / "history"
    private_dir(path.parent)  # what was typed may name productions and values: 0700
    return path


def _state_choices(_app=None) -> Choices:
    return Choices.from_values(STATES)


# NAME then operator characters, whatever follows: a term, even a mistyped one
# (threshold>>5 is a filter to refuse with its reason, not 'threshold' appended to a file 5)
_TERM_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*[<>=!][^|;]*$")

SELECTION_HELP = ("task ids (a unique prefix is enough) and/or filter terms NAME OP VALUE "
                  "(OP: = != < <= > >=; VALUE,VALUE: any of; terms all hold), e.g. "
                  "'threshold>=8000 subdet=EHH'")


def _complete_selection(app: cmd2.Cmd, text: str, line: str, endidx: int,
                        extra: tuple = ()) -> Completions:
    """Task ids, parameter names (``name=``), then the values of ``name OP``. The terminal
    side breaks words at ``<``/``>`` (redirection characters), so ``text`` may be only the
    end of the term being typed: the whole word is taken from the line, and the candidates
    are given back without the part before ``text``."""
    word = re.split(r"\s", line[:endidx])[-1]
    head = word[:len(word) - len(text)] if word.endswith(text) else ""
    try:
        answer = app.ask("complete", text=word)
        candidates = list(answer["candidates"])
        if not is_term(word):
            candidates += [e for e in extra if e.startswith(word)]
            if word:  # task ids only once something is typed: 30,000 of them help nobody
                candidates += app.ask("find", prefix=word, limit=200)["ids"]
    except ControlError:
        return Completions.from_values([])
    items = [CompletionItem(c[len(head):], display=c) for c in candidates if c.startswith(head)]
    final = not (len(items) == 1 and candidates[0].endswith(("=", ",")))
    return Completions(items=items, is_sorted=True, allow_finalization=final)


def _selection_completer(app: cmd2.Cmd, text: str, line: str, begidx: int, endidx: int) -> Completions:
    return _complete_selection(app, text, line, endidx)


def _tasks_completer(app: cmd2.Cmd, text: str, line: str, begidx: int, endidx: int) -> Completions:
    return _complete_selection(app, text, line, endidx, STATES)


def _cancel_completer(app: cmd2.Cmd, text: str, line: str, begidx: int, endidx: int) -> Completions:
    return _complete_selection(app, text, line, endidx, ("all",))


def _errors_completer(app: cmd2.Cmd, text: str, line: str, begidx: int, endidx: int) -> Completions:
    return _complete_selection(app, text, line, endidx, ("by",))


def _axis_completer(app: cmd2.Cmd, text: str, line: str, begidx: int, endidx: int) -> Completions:
    try:
        names = [a["name"] for a in app.ask("axes")["axes"] if len(a["values"]) > 1]
    except ControlError:
        names = []
    return Completions.from_values([n for n in names if n.startswith(text)])


def _task_parser(description: str, nargs: str = "*", completer=_selection_completer) -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description=description)
    parser.add_argument("tasks", nargs=nargs, metavar="TASK|FILTER", completer=completer,
                        help=SELECTION_HELP)
    return parser


def _tasks_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Table of tasks, most recently changed first, with "
                                "attempts, host, runtime (so far, while running) and peak RSS. "
                                "States: " + "; ".join(f"{s}: {h}" for s, h in STATE_HELP.items()))
    parser.add_argument("words", nargs="*", metavar="STATE|TASK|FILTER", completer=_tasks_completer,
                        help="only tasks in this state; " + SELECTION_HELP)
    parser.add_argument("-n", "--limit", type=int, default=TABLE_LIMIT,
                        help=f"rows to show (default {TABLE_LIMIT}, 0 for all)")
    return parser


def _grid_parser() -> Cmd2ArgumentParser:
    from ..views.heatmap import METRICS

    parser = Cmd2ArgumentParser(description="The tasks as a map over two parameters: one cell per "
                                "(X, Y) pair, the other parameters summarised per cell (X failed "
                                "for good > ! failed, retry waiting > '>' running > # all done > "
                                "+ partly done > . pending > c cancelled), or with --metric the "
                                "cell's peak RSS, mean runtime or CPU time, or failure fraction "
                                "on a shade scale. A legend follows the map.")
    parser.add_argument("x", completer=_axis_completer, help="parameter across (columns)")
    parser.add_argument("y", completer=_axis_completer, help="parameter down (rows)")
    parser.add_argument("words", nargs="*", metavar="FILTER", completer=_selection_completer,
                        help=SELECTION_HELP)
    parser.add_argument("-m", "--metric", choices=METRICS,
                        help="a resource instead of the states")
    return parser


def _errors_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Failed tasks grouped by cause and error message, "
                                "with counts, one example each ('log EXAMPLE' shows its log) and "
                                "the parameter values all tasks of a group share; 'to retry' "
                                "counts those that wait for (or run) their next attempt. 'errors "
                                "by' ranks the parameters by how strongly failures depend on "
                                "them, per cause.")
    parser.add_argument("words", nargs="*", metavar="by|TASK|FILTER",
                        completer=_errors_completer,
                        help="'by' for the ranking; " + SELECTION_HELP)
    return parser


def _log_parser() -> Cmd2ArgumentParser:
    parser = _task_parser("Last lines of a task's log (finished, running or last failed attempt). "
                          "Given a filter, the log of the first task it selects, failures first.",
                          nargs="+")
    parser.add_argument("-n", "--lines", type=int, default=LOG_LINES,
                        help=f"lines to show (default {LOG_LINES})")
    return parser


def _interval_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Show or set the seconds between status updates and "
                                            "automatic retries (also: set interval N).")
    parser.add_argument("seconds", nargs="?", type=float, help="new interval in seconds")
    return parser


def _verbose_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Toggle (or set) a line for every task that "
                                            "finishes or fails (also: set verbose true).")
    parser.add_argument("switch", nargs="?", choices=("on", "off"))
    return parser


def _scale_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Ask the cluster for N workers (stops adaptive "
                                            "scaling). Going down, idle workers go first; a "
                                            "busy one hands its task back without costing "
                                            "it an attempt.")
    parser.add_argument("workers", type=int, help="number of workers")
    return parser


def _adapt_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Let Dask scale the cluster between MIN and MAX workers "
                                            "following the load.")
    parser.add_argument("minimum", type=int)
    parser.add_argument("maximum", type=int)
    return parser


def _no_args(description: str):
    return lambda: Cmd2ArgumentParser(description=description)


def _positive(value) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("give a positive number of seconds")
    return seconds


def _console_exit(*_args) -> None:
    """``exit()``/``quit()`` of the debug console: leave it, and only it. The builtins of
    the same name close standard input first, which would take the monitor down too."""
    raise SystemExit
