"""Selecting tasks by their parameters: ``threshold>=8000 subdet=EHH delay!=3.5 tofsmearing=0,2``.

A physicist thinks of a 30,000-task production as a grid, not as 30,000 hashes, and wants to
look at, retry or cancel "the pile-up 400 corner". This is the small language for that, shared
by the monitor's commands and ``BXRun --status``:

- a *term* is ``NAME OP VALUE[,VALUE...]`` with OP one of ``= != < <= > >=`` (``==`` is ``=``);
  a comma means *any of* (only with ``=`` and ``!=``); the terms of a selection all hold
  (AND);
- any other word is a task id or a unique prefix of one: those tasks are added to the ones
  the terms select (``retry 3fa9 threshold>=8000``: that task and the high thresholds).

Parsing never evaluates anything: a term is split at its operator and each value is converted
by the parameter's declared type (:class:`~timecal_core.contract.hookspecs.Parameter`), or, where the
declarations are not at hand (``BXRun --status`` reads only the ledger), by the type its values
have. A name that is not a parameter, a value of the wrong type, or one no task has, is a
one-line :class:`SelectionError` naming the term and what is allowed.

Speed: a production's parameters take few distinct values (30 thresholds, not 30,000), so each
term is resolved once against the distinct values of its parameter into a set of allowed
values; testing a task is then one set lookup per constrained parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contract.errors import UserError

OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">")
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*(<=|>=|!=|==|=|<|>)(.*)$")
_OPERATOR_CHARS = set("=<>!")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
MAX_LISTED = 12  # values named in an error message before "..."


class SelectionError(UserError):
    """A selection term that cannot be understood; one line naming the term and what is allowed."""


def is_term(word: str) -> bool:
    """Does ``word`` look like a filter term (rather than a task id or a state)?"""
    return any(c in _OPERATOR_CHARS for c in word)


EMPTY = '""'  # an empty text value, as typed in a selection (hits="") and shown


def format_value(value: Any) -> str:
    """How a value is typed in a selection and shown on screen (``0.5``, ``400``, ``true``,
    ``""`` for empty text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return EMPTY
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() or abs(value) >= 1e-4 else repr(value)
    return str(value)


def _sort_key(value: Any) -> tuple:
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, (int, float)):
        return (1, value, "")
    return (2, 0, str(value))


@dataclass(frozen=True)
class Axis:
    """One parameter of a production: its type and the distinct values its tasks have."""

    name: str
    type: str  # int, float, str, bool, path
    values: tuple  # sorted
    unit: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "float")

    def describe_values(self, limit: int = MAX_LISTED) -> str:
        shown = ", ".join(format_value(v) for v in self.values[:limit])
        return shown + (f", ... ({len(self.values)} values)" if len(self.values) > limit else "")


def _infer_type(values: Iterable[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {bool}:
        return "bool"
    if kinds and kinds <= {int}:
        return "int"
    if kinds and kinds <= {int, float}:
        return "float"
    return "str"


@dataclass
class ParameterSpace:
    """The parameters of a production and the values its tasks take: what a selection may
    name, what completion offers, the axes a grid map may use."""

    axes: dict[str, Axis]
    #: task id -> its parameters (the plan's: they never change during a run)
    params: Mapping[str, Mapping[str, Any]] = field(repr=False, default_factory=dict)

    @classmethod
    def build(cls, params: Mapping[str, Mapping[str, Any]],
              declared: Sequence[Any] = ()) -> ParameterSpace:
        """``params``: task id -> parameters; ``declared``: the script's ``Parameter``
        declarations (type, unit) where known, in their order."""
        rows = list(params.values())
        distinct: dict[str, set] = {}
        for name in sorted(set().union(*rows)) if rows else ():
            try:
                distinct[name] = {p.get(name) for p in rows}
            except TypeError:  # an unhashable value (a list): not selectable
                distinct[name] = set()
        return cls._from_distinct(distinct, params, declared)

    @classmethod
    def from_columns(cls, names: Sequence[str], rows: Sequence[tuple],
                     declared: Sequence[Any] = ()) -> ParameterSpace:
        """From rows (task id, value of each of ``names``), as the ledger extracts them for
        ``BXRun --status``: the values are counted column by column and a task's parameters
        are only assembled when asked for."""
        from collections import Counter

        names = list(names)
        columns = list(zip(*rows)) if rows else [()] * (len(names) + 1)
        distinct, counts = {}, {}
        for k, name in enumerate(names, start=1):
            counts[name] = dict(Counter(columns[k]))
            distinct[name] = set(counts[name])
        space = cls._from_distinct(distinct, _RowParams(names, rows, columns), declared)
        space.__dict__["_counts"] = counts
        return space

    @classmethod
    def _from_distinct(cls, distinct: dict[str, set], params: Mapping[str, Mapping[str, Any]],
                       declared: Sequence[Any]) -> ParameterSpace:
        by_name = {d.name: d for d in declared}
        order = [d.name for d in declared if d.name in distinct]
        order += sorted(n for n in distinct if n not in by_name)
        axes = {}
        for name in order:
            values = tuple(sorted(distinct[name], key=_sort_key))
            decl = by_name.get(name)
            kind = decl.type if decl is not None else _infer_type(values)
            axes[name] = Axis(name, kind, values, getattr(decl, "unit", "") or "")
        return cls(axes, params)

    def column(self, name: str) -> dict[str, Any]:
        """task id -> its value of ``name``, built once per parameter (the plan does not change
        during a run): maps and statistics then read 30,000 values with C-level lookups."""
        cache = self.__dict__.setdefault("_columns", {})
        col = cache.get(name)
        if col is None:
            params = self.params
            if isinstance(params, _RowParams):
                col = params.column(name)
            else:
                col = {tid: p.get(name) for tid, p in params.items()}
            cache[name] = col
        return col

    def getter(self, name: str):
        """task id -> its value of ``name`` (None if unknown)."""
        return self.column(name).get

    def value_counts(self, name: str, ids: Iterable[str] | None = None) -> dict[Any, int]:
        """How many tasks (of ``ids``, default all: cached) have each value of ``name``."""
        from collections import Counter

        if ids is None:
            cache = self.__dict__.setdefault("_counts", {})
            if name not in cache:
                cache[name] = dict(Counter(self.column(name).values()))
            return cache[name]
        return dict(Counter(map(self.column(name).get, ids)))

    @property
    def names(self) -> list[str]:
        return list(self.axes)

    @property
    def varying(self) -> list[str]:
        """Parameters with more than one value: the dimensions of the scan."""
        return [n for n, a in self.axes.items() if len(a.values) > 1]

    def axis(self, name: str, what: str = "parameter") -> Axis:
        axis = self.axes.get(name)
        if axis is None:
            raise SelectionError(f"{what} {name!r}: not a parameter of this production; "
                                 f"parameters: {', '.join(self.varying or self.names) or 'none'}")
        return axis

    def parse(self, words: Iterable[str]) -> Filter:
        """The terms of ``words`` (all of them must be terms) as one filter."""
        allowed: dict[str, set] = {}
        for word in words:
            name, values = self._parse_term(word)
            allowed[name] = allowed[name] & values if name in allowed else values
        return Filter(allowed, tuple(words))

    def _parse_term(self, word: str) -> tuple[str, set]:
        match = _TERM.match(word.strip())
        if not match:
            raise SelectionError(f"{word!r}: not a selection term; write NAME OP VALUE with OP one "
                                 f"of {' '.join(o for o in OPERATORS if o != '==')} (e.g. "
                                 f"{self._example()}), VALUE,VALUE for any of several")
        name, op, text = match.groups()
        op = "=" if op == "==" else op
        if name not in self.axes:
            raise SelectionError(f"{word!r}: {name!r} is not a parameter of this production; "
                                 f"parameters: {', '.join(self.varying or self.names) or 'none'}")
        axis = self.axes[name]
        text = text.strip()
        if not text and "" in axis.values and op in ("=", "!="):
            text = EMPTY  # hits= : the tasks whose text is empty
        if not text:
            raise SelectionError(f"{word!r}: no value after {op}; {name} takes "
                                 f"{axis.describe_values()}")
        raw = [t.strip() for t in text.split(",")]
        if op in ("<", "<=", ">", ">="):
            if not axis.numeric:
                raise SelectionError(f"{word!r}: {op} needs a numeric parameter; {name} is "
                                     f"{axis.type}: use = or != with {axis.describe_values()}")
            if len(raw) != 1:
                raise SelectionError(f"{word!r}: {op} takes one value (a comma means 'any of', "
                                     f"for = and !=)")
            bound = self._convert(word, axis, raw[0])
            compare = {"<": lambda v: v < bound, "<=": lambda v: v <= bound,
                       ">": lambda v: v > bound, ">=": lambda v: v >= bound}[op]
            return name, {v for v in axis.values if v is not None and compare(v)}
        wanted = set()
        for item in raw:
            value = self._convert(word, axis, item)
            present = [v for v in axis.values if _same(v, value)]
            if not present:
                raise SelectionError(f"{word!r}: no task has {name}={item}; {name} takes "
                                     f"{axis.describe_values()}")
            wanted.update(present)
        if op == "=":
            return name, wanted
        return name, {v for v in axis.values if v not in wanted}

    @staticmethod
    def _convert(word: str, axis: Axis, text: str) -> Any:
        if text == EMPTY and axis.type not in ("int", "float", "bool"):
            return ""
        try:
            if axis.type == "int":
                value = float(text)
                if not value.is_integer():
                    raise ValueError
                return int(value)
            if axis.type == "float":
                value = float(text)
                if not math.isfinite(value):
                    raise ValueError
                return value
            if axis.type == "bool":
                low = text.lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise ValueError
        except ValueError:
            expected = {"int": "an integer", "float": "a number", "bool": "true or false"}[axis.type]
            raise SelectionError(f"{word!r}: {axis.name} expects {expected}, got {text!r}; it "
                                 f"takes {axis.describe_values()}") from None
        return text

    def _example(self) -> str:
        names = self.varying or self.names
        if not names:
            return "threshold>=8000"
        axis = self.axes[names[0]]
        return f"{axis.name}={format_value(axis.values[-1])}" if axis.values else axis.name + "=..."

    # ------------------------------------------------------------------ completion
    def complete(self, text: str) -> tuple[list[str], bool]:
        """Completions of a word being typed: parameter names (as ``name=``, not final),
        then, after ``name OP``, the values that exist. Returns (candidates, final)."""
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*(<=|>=|!=|==|=|<|>)(.*)$", text)
        if not match:
            names = [n for n in (self.varying + [n for n in self.names if n not in self.varying])
                     if n.startswith(text)]
            return [n + "=" for n in names], False
        name, op, typed = match.groups()
        axis = self.axes.get(name)
        if axis is None:
            return [], True
        head, _, last = typed.rpartition(",")
        if head and op in ("<", "<=", ">", ">="):
            return [], True  # one value only
        prefix = f"{name}{op}{head + ',' if head else ''}"
        values = [format_value(v) for v in axis.values]
        return [prefix + v for v in values if v.startswith(last)], True

    # ------------------------------------------------------------------ resolving
    def select(self, words: Sequence[str], ids: Iterable[str],
               find: Any = None) -> list[str]:
        """Task ids for ``words``: the tasks matching every term, plus the tasks named by id
        or unique prefix (``find(prefix, limit)`` lists ids starting with a prefix). ``ids``
        is the order results come in (the plan's); unknown prefixes are errors."""
        terms = [w for w in words if is_term(w)]
        named: list[str] = []
        for word in words:
            if is_term(word):
                continue
            matches = find(word, 2) if find is not None else sorted(
                t for t in self.params if t.startswith(word))[:2]
            if len(matches) != 1:
                what = "no task" if not matches else "several tasks"
                raise SelectionError(f"{word}: {what} with this id; give a task id (a unique prefix "
                                     f"is enough) or a filter such as {self._example()}")
            named.append(matches[0])
        out = list(dict.fromkeys(named))
        if terms:
            flt = self.parse(terms)
            seen = set(out)
            matching = flt.matching(self)
            out += [t for t in ids if t in matching and t not in seen]
        return out


class _RowParams(Mapping):
    """task id -> parameters, over rows (task id, values...) without a dict per task until
    one is asked for."""

    def __init__(self, names: Sequence[str], rows: Sequence[tuple], columns: Sequence[tuple] = ()):
        self._names = tuple(names)
        self._rows = rows
        self._columns = columns or list(zip(*rows))  # column 0: the task ids
        self._index = dict(zip(self._columns[0], range(len(rows)))) if rows else {}

    def __getitem__(self, task_id: str) -> dict:
        return dict(zip(self._names, self._rows[self._index[task_id]][1:]))

    def get(self, task_id, default=None):
        i = self._index.get(task_id)
        return default if i is None else dict(zip(self._names, self._rows[i][1:]))

    def column(self, name: str) -> dict[str, Any]:
        if name not in self._names:
            return {}
        return dict(zip(self._columns[0], self._columns[self._names.index(name) + 1]))

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, task_id) -> bool:
        return task_id in self._index


@dataclass(frozen=True)
class Filter:
    """Allowed values per constrained parameter (every term resolved against the values that
    exist); a task matches when each of its constrained values is allowed (:meth:`matching`
    gives the ids of all of them at once)."""

    allowed: Mapping[str, set]
    words: tuple = ()

    def matching(self, space: ParameterSpace) -> set[str]:
        """The ids of the tasks of ``space`` that match."""
        out: set[str] | None = None
        for name, values in self.allowed.items():
            ids = {t for t, v in space.column(name).items() if _hashable_in(v, values)}
            out = ids if out is None else out & ids
        return set(space.params) if out is None else out

    def describe(self) -> str:
        return " ".join(self.words)


def _hashable_in(value: Any, values: set) -> bool:
    try:
        return value in values
    except TypeError:
        return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)
