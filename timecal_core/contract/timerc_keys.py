"""What a timerc section may hold, declared once: each key with its type, default and help.

The code reads a section through its declaration (:meth:`SettingsSection.check`), so a key
that is misspelled or a value of the wrong type is one line naming the section, the key and
what is allowed, before anything is written or submitted; and the documentation's timerc
reference is generated from the same declarations, so the page cannot drift from what the
code accepts. The core declares its own sections (``[paths]``, ``[cmssw]``, ``[retry]``,
``[notify]``); a backend declares its section where it registers
(``ExecutionBackend(settings=...)``), so that a plugin's keys are checked and documented the
same way as the core's.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UserError

#: The types a setting may have, and how the reference page words each.
TYPES = {
    "text": "text",
    "path": "a path (``~`` and ``$VARIABLES`` are expanded)",
    "shell": "shell code, run in bash (trusted: it is yours)",
    "lines": "one item per line (indented continuation lines)",
    "integer": "a whole number",
    "size": "a size such as ``2GB`` or ``1500MB``",
    "yes/no": "``yes`` or ``no`` (also ``true``/``false``, ``on``/``off``, ``1``/``0``)",
    "choice": "one of the listed values",
}
YES = ("yes", "true", "on", "1")
NO = ("no", "false", "off", "0")


@dataclass(frozen=True)
class Setting:
    """One key of a timerc section.

    ``default`` says, as text, what applies when the key is absent (``""``: nothing is set);
    readers take a fixed default from here
    (:meth:`~timecal_core.contract.timerc_keys.SettingsSection.default`) rather than
    repeating it. ``choices`` lists the allowed values of a ``choice``, or the words a
    ``size`` also accepts (``auto``). ``minimum`` bounds an ``integer`` (inclusive).
    """

    key: str
    type: str = "text"
    default: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"timerc key {self.key}: type {self.type!r} is not one of {', '.join(TYPES)}")

    def problem(self, value: str) -> str | None:
        """Why ``value`` (stripped, non-empty) is not of this setting's type; None if it is."""
        if self.type == "integer":
            try:
                number = int(value)
            except ValueError:
                number = None
            low = 0 if self.minimum is None else self.minimum
            if number is None or number < low:
                return "expected a positive integer" if low == 1 else f"expected an integer >= {low}"
        elif self.type == "size":
            if value.lower() in self.choices:
                return None
            from dask.utils import parse_bytes  # only when a size is checked

            try:
                parse_bytes(value)
            except (ValueError, TypeError):
                also = "".join(f", or {c}" for c in self.choices)
                return f"expected a size such as 2GB or 1500MB{also}"
        elif self.type == "yes/no":
            if value.lower() not in YES + NO:
                return "expected yes or no"
        elif self.type == "choice":
            if value not in self.choices:
                return "expected one of " + ", ".join(self.choices)
        return None


@dataclass(frozen=True)
class SettingsSection:
    """A timerc section: its name (``local`` for ``[local]``), its keys and what it is for."""

    name: str
    settings: tuple[Setting, ...]
    help: str = ""

    def __post_init__(self) -> None:
        keys = [s.key for s in self.settings]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"timerc [{self.name}]: key(s) declared twice: {', '.join(twice)}")

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys, in the order they are declared (and listed in errors and the reference)."""
        return tuple(s.key for s in self.settings)

    def setting(self, key: str) -> Setting:
        """The declaration of ``key``; KeyError for a key the code asks for but never declared."""
        for s in self.settings:
            if s.key == key:
                return s
        raise KeyError(f"timerc [{self.name}] declares no key {key!r}")

    def default(self, key: str) -> str:
        """What applies when ``key`` is absent: readers take a fixed default from here."""
        return self.setting(key).default

    def check(self, values: Mapping[str, str | None], where: str = "timerc") -> dict[str, str]:
        """``values`` (a section as read from the file) checked against the declaration:
        every key declared, every non-empty value of its key's type. Returns the values,
        stripped (``None``, a key without ``=``, becomes ``""``). Raises one UserError."""
        unknown = [k for k in values if k not in self.keys]
        if unknown:
            named = ", ".join(k + _suggestion(k, self.keys) for k in unknown)
            raise UserError(
                f"{where} [{self.name}]: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{named}; allowed: {', '.join(self.keys)}"
            )
        checked = {}
        for key, raw in values.items():
            value = (raw or "").strip()
            problem = self.setting(key).problem(value) if value else None
            if problem:
                raise UserError(f"{where} [{self.name}] {key} = {value!r}: {problem}")
            checked[key] = value
        return checked


def _suggestion(word: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_sections(
    sections: Mapping[str, Mapping[str, str | None]], declared: list[SettingsSection], where: str = "timerc"
) -> None:
    """Every declared section present in ``sections`` checked; a section that is not
    declared but looks like a misspelling of one that is (``[slurn]``) is an error too.
    Other sections are left alone: they may belong to a plugin installed elsewhere."""
    by_name = {d.name: d for d in declared}
    for name, values in sections.items():
        if name in by_name:
            by_name[name].check(values, where)
            continue
        close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.75)
        if close:
            raise UserError(
                f"{where}: unknown section [{name}] (did you mean [{close[0]}]?); "
                f"sections: {', '.join(f'[{n}]' for n in by_name)}"
            )
