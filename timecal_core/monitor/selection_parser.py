"""The monitor's command line reads ``tasks threshold>=8000`` as a filter, not as ``tasks
threshold`` redirected to a file ``=8000``: cmd2's statement parser, with one method
overridden, replaces the shell's own.

That leans on how cmd2 works inside, so it is gated (:class:`timecal_core.fastpath.FastPath`)
and checked: with a cmd2 it was not tested with, or when the installed parser does not read a
filter as one word (checked on a sample line when the shell starts), the shell keeps cmd2's own
parser and says once that a filter with ``<`` or ``>`` must be quoted (``tasks
'threshold>=8000'``, which both parsers read alike).

Tested with cmd2 4.0 to 4.3 (4.0.0 in ``make test-lowest``, 4.3 in ``make test`` and
``make test-latest``). What it relies on (no name with an underscore):

- ``cmd2.parsing.StatementParser``, subclassed, its ``split_on_punctuation(tokens)`` overridden,
  and cmd2 calling that method for every line it parses and completes;
- ``cmd2.Cmd.statement_parser``, whose class is swapped (the instance, with the terminators,
  shortcuts and aliases cmd2 gave it, is kept);
- ``StatementParser.parse(line)`` returning a ``Statement`` with ``command`` and ``args``.
"""

from __future__ import annotations

import re
from typing import Any

from cmd2.parsing import StatementParser

from ..fastpath import FastPath

GATE = FastPath(
    "cmd2",
    "4.0",
    "4.3",
    "the monitor's filter words",
    "cmd2's own parser",
    "quote a filter with < or >: tasks 'threshold>=8000'",
)

_TERM_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*(<=|>=|!=|==|=|<|>)[^|>;<]*$")
#: A line the installed parser must read as command ``tasks`` with the filter as its argument.
_SAMPLE = ("tasks threshold>=8000", "tasks", "threshold>=8000")


class SelectionStatementParser(StatementParser):
    """cmd2's parser, except that a word like ``threshold>=8000`` stays one word: cmd2 would
    read its ``>`` as an output redirection. A redirection or pipe written as a word of its
    own (``tasks > file``, ``errors | less``) still works."""

    def split_on_punctuation(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        for token in tokens:
            if _TERM_TOKEN.match(token):
                out.append(token)
            else:
                out.extend(super().split_on_punctuation([token]))
        return out


def install(shell: Any) -> bool:
    """Give ``shell`` (a ``cmd2.Cmd``) the parser that keeps filters whole. False, and said once
    per process, where the gate is shut or the result does not read a filter as one word: the
    shell then has cmd2's own parser, as it had."""
    if not GATE.usable():
        return False
    parser = shell.statement_parser
    original = parser.__class__
    try:
        parser.__class__ = SelectionStatementParser
        line, command, args = _SAMPLE
        statement = parser.parse(line)
        if (statement.command, statement.args) != (command, args):
            raise RuntimeError(f"{line!r} read as command {statement.command!r}, arguments {statement.args!r}")
    except Exception as exc:  # any surprise of this cmd2: its own parser, as before
        parser.__class__ = original
        GATE.failed(exc)
        return False
    return True
