"""The words every timecal command shares (BXRun, timecal, plotScan, runCalibration, and any
command a plugin installs), so that what a physicist learnt on one command holds on the next:

- an option means one thing wherever it appears: ``--dask`` is always an execution backend,
  ``--mode`` always the CBC's Sampled/Latched, ``-o`` always where the command writes, ``-i``
  the production it reads, ``--yaml`` its own YAML file (:data:`WORDS`);
- a list is given one way: values separated by spaces after the option, and repeating the
  option adds more (:class:`ListAction`);
- every command answers ``--version`` and ``-v/--verbose`` (:func:`add_standard`);
- a spelling that changed keeps working for the scripts users have, with one warning line
  (:func:`deprecated`).

Commands add these options through :func:`add` rather than spelling them, and
``tests/test_cli_vocabulary.py`` walks every console script's parser against this module, so
that an option drifting from its meaning fails a test. Each command builds its parser in a
module-level ``build_parser()`` without side effects (the documentation generates the CLI
reference from it)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import metadata

CORE_DISTRIBUTION = "timecal-core"


@dataclass(frozen=True)
class Word:
    """One option and its one meaning: every help text of it starts with ``meaning``; a
    command adds what is its own after a colon."""

    flags: tuple[str, ...]
    dest: str
    meaning: str
    is_list: bool = False


#: The shared options, by long flag. An option used by two commands must be here.
WORDS: dict[str, Word] = {w.flags[-1]: w for w in (
    Word(("-o", "--output"), "output", "where this command writes"),
    Word(("-i", "--input"), "input", "the production this command reads"),
    Word(("--dask",), "dask", "execution backend"),
    Word(("--mode",), "mode", "the CBC's hit-detection mode, Sampled or Latched"),
    Word(("--yaml",), "yaml", "this command's YAML file"),
    Word(("--custom",), "custom", "fill {KEY} placeholders of the YAML", is_list=True),
    Word(("--interval",), "interval", "seconds between status updates and retries"),
    Word(("-v", "--verbose"), "verbose", "more detail, and the traceback of an error"),
    Word(("--version",), "version", "print the version of this command and of timecal, and exit"),
)}
_BY_FLAG = {flag: word for word in WORDS.values() for flag in word.flags}


def deprecated(prog: str, old: str, new: str) -> None:
    """The one line an old spelling gets (it still works): ``PROG: warning: OLD is
    deprecated: NEW``."""
    print(f"{prog}: warning: {old} is deprecated: {new}", file=sys.stderr, flush=True)


class ListAction(argparse.Action):
    """The one way to give a list: ``--opt A B C``; ``--opt A --opt B`` adds up the same way.
    ``old_commas=True`` still splits the comma-separated form an option used to take
    (``--formats png,pdf``), with a deprecation line."""

    def __init__(self, option_strings, dest, nargs="+", old_commas: bool = False, **kwargs):
        if nargs != "+":
            raise ValueError(f"{'/'.join(option_strings)}: a list takes nargs '+' (one way for every list)")
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.old_commas = old_commas

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        # given values replace the default; a repeated option adds to what it gave before
        items = [] if current is None or current is self.default else list(current)
        for value in values:
            if self.old_commas and "," in value:
                parts = [v for v in value.split(",") if v]
                deprecated(parser.prog, f"{option_string} {value} (a comma-separated list)",
                           f"separate the values with spaces: {option_string} {' '.join(parts)}")
                items += parts
            else:
                items.append(value)
        setattr(namespace, self.dest, items)


def add(parser, flag: str, detail: str = "", **kwargs) -> argparse.Action:
    """Add the shared option ``flag`` (``-o`` or ``--output``: a flag of :data:`WORDS`) to
    ``parser`` (or an argument group): its flags, dest and list form are the word's;
    ``detail`` follows its meaning in the help (after a colon, or a space
    before a parenthesis); ``kwargs`` (default, metavar, choices, type,
    required, ...) are the command's."""
    word = _BY_FLAG[flag]
    for fixed in ("dest", "nargs", "action"):
        if fixed in kwargs:
            raise TypeError(f"{flag}: {fixed} is the vocabulary's, not the command's")
    if word.is_list:
        kwargs["action"] = ListAction
    joint = " " if detail.startswith("(") else ": "
    return parser.add_argument(*word.flags, dest=word.dest,
                               help=word.meaning + (joint + detail if detail else ""), **kwargs)


def add_list(parser, *flags: str, **kwargs) -> argparse.Action:
    """A list option of one command (``--observables A B``): :class:`ListAction`."""
    return parser.add_argument(*flags, action=ListAction, **kwargs)


def add_standard(parser: argparse.ArgumentParser, distribution: str = CORE_DISTRIBUTION,
                 subcommand: bool = False) -> None:
    """``-v/--verbose`` and ``--version`` on a command (``distribution``: the one that
    installs it). On a subcommand (``timecal attach -v``) an absent ``-v`` leaves the main
    command's value alone."""
    verbose = WORDS["--verbose"]
    parser.add_argument(*verbose.flags, dest=verbose.dest, action="store_true",
                        default=argparse.SUPPRESS if subcommand else False, help=verbose.meaning)
    parser.add_argument(*WORDS["--version"].flags, action=VersionAction, distribution=distribution,
                        help=WORDS["--version"].meaning)


class VersionAction(argparse.Action):
    """``--version``: ``plotScan: timecal-analysis 0.1.0, timecal-core 0.1.0`` (read from the
    installed distributions when asked, not when the parser is built)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 distribution: str = CORE_DISTRIBUTION, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.distribution = distribution

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line(parser.prog, self.distribution))
        parser.exit()


def version_line(prog: str, distribution: str = CORE_DISTRIBUTION) -> str:
    names = dict.fromkeys((distribution, CORE_DISTRIBUTION))
    return f"{prog}: " + ", ".join(f"{name} {_version(name)}" for name in names)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        if distribution == CORE_DISTRIBUTION:
            from .. import __version__

            return f"{__version__} (not installed)"
        return "(not installed)"
