"""The monitor's parser keeps ``threshold>=8000`` one word on a cmd2 it was tested with, and
steps aside for cmd2's own parser (said once) on another release, when it raises, or when it
does not read a filter as one word: the shell still works, a filter with ``>`` quoted."""

from __future__ import annotations

import cmd2
import pytest

from conftest import fast_path_tested
from timecal_core.monitor import selection_parser


@pytest.fixture
def gate(catch_gate):
    """What the selection parser's gate says, from undecided."""
    fast_path_tested(selection_parser.GATE)
    return catch_gate(selection_parser.GATE)


def shell() -> cmd2.Cmd:
    return cmd2.Cmd(allow_cli_args=False, persistent_history_file="")


def test_a_tested_cmd2_reads_a_filter_as_one_word(gate):
    app = shell()
    assert app.statement_parser.parse("tasks threshold>=8000").args == "threshold"  # cmd2's own reading
    assert selection_parser.install(app)
    statement = app.statement_parser.parse("tasks threshold>=8000 subdet=EHH > out.txt")
    assert (statement.command, statement.args) == ("tasks", "threshold>=8000 subdet=EHH")
    assert "out.txt" in (getattr(statement, "redirect_to", None), getattr(statement, "output_to", None))
    assert gate.getvalue() == ""


def _falls_back(app, gate, first_words):
    assert not selection_parser.install(app)
    assert type(app.statement_parser) is cmd2.parsing.StatementParser, "the shell kept a parser that failed"
    lines = gate.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(first_words), lines
    assert "quote a filter with < or >: tasks 'threshold>=8000'" in lines[0]
    statement = app.statement_parser.parse("tasks 'threshold>=8000'")  # what the line tells the user
    assert statement.argv == ["tasks", "threshold>=8000"]  # the words argparse gets
    assert not selection_parser.install(shell()) and len(gate.getvalue().splitlines()) == 1  # said once


def test_an_untested_cmd2_keeps_its_own_parser_and_says_how_to_write_a_filter(gate, monkeypatch):
    monkeypatch.setattr(cmd2, "__version__", "99.0.0")
    _falls_back(shell(), gate, "timecal: cmd2 99.0.0 not tested with the monitor's filter words")


def test_a_parser_that_raises_is_taken_back(gate, monkeypatch):
    def boom(self, tokens):
        raise RuntimeError("injected")

    monkeypatch.setattr(selection_parser.SelectionStatementParser, "split_on_punctuation", boom)
    _falls_back(shell(), gate, "timecal: the monitor's filter words failed with cmd2")


def test_a_parser_that_splits_a_filter_is_taken_back(gate, monkeypatch):
    """A cmd2 that stopped calling the overridden method would read the filter as a
    redirection, writing a file named '=8000': the sample line catches it."""
    monkeypatch.setattr(
        selection_parser.SelectionStatementParser,
        "split_on_punctuation",
        cmd2.parsing.StatementParser.split_on_punctuation,
    )
    _falls_back(shell(), gate, "timecal: the monitor's filter words failed with cmd2")
