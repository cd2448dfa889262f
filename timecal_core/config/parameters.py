"""Turning what users type (``k=v`` on the command line, YAML scalars) into one canonical
parameter set, so that ``5000``, ``5000.0`` and ``"5000"`` for a float are the same point
and every error names the parameter, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contract.errors import UserError
from ..contract.hookspecs import Parameter

# A step argument ``{match:PATTERN}`` is replaced by a file of the work directory
# (timecal_core.run.tasks.resolve_matches); a user's value must never be.
MATCH_MARK = "{match:"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def shown(value: Any, limit: int = 80) -> str:
    """A value as an error quotes it: its repr, cut (an included file read as one string must
    not fill the terminal)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..." + f" ({len(text)} characters)"


def _describe(param: Parameter) -> str:
    if param.choices:
        return "one of " + ", ".join(str(c) for c in param.choices)
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "path": "an existing file"}[param.type]


def coerce(param: Parameter, value: Any, source: str, base: Path | None = None) -> Any:
    """Canonical form of ``value`` for ``param``; ``UserError`` naming source/param otherwise.
    A relative ``path`` is relative to ``base`` (default: the current directory)."""
    def bad() -> UserError:  # built only when needed: planning coerces every value of a grid
        return UserError(f"{source}: parameter '{param.name}' expects {_describe(param)}, got {shown(value)}")

    if isinstance(value, (list, tuple, dict)):
        raise bad()
    kind = param.type
    try:
        if kind == "float" and type(value) is float and math.isfinite(value):
            out: Any = value  # the common cases first: a grid of 100,000 values coerces each
        elif kind == "int" and type(value) is int:
            out = value
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
        elif kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                out = int(value)
            else:
                text = str(value).strip()
                try:
                    out = int(text)
                except ValueError:
                    f = float(text)
                    if not f.is_integer():
                        raise
                    out = int(f)
        elif kind == "bool":
            if isinstance(value, bool):
                out = value
            elif str(value).strip().lower() in _TRUE:
                out = True
            elif str(value).strip().lower() in _FALSE:
                out = False
            else:
                raise ValueError
        elif kind == "path":
            out = _existing_file(param, value, source, base)
        else:
            out = str(value)
            if MATCH_MARK in out:
                raise UserError(f"{source}: parameter '{param.name}' got {shown(value)}; allowed: text "
                                f"without '{MATCH_MARK}' (it is how a script names a file its own "
                                f"steps produce, and is never filled in a parameter value)")
    except (TypeError, ValueError):
        raise bad() from None
    if param.choices and out not in param.choices:
        raise UserError(f"{source}: parameter '{param.name}' got {shown(value)}; allowed: "
                        + ", ".join(str(c) for c in param.choices))
    if param.minimum is not None and kind in ("int", "float") and out < param.minimum:
        unit = f" {param.unit}" if param.unit else ""
        raise UserError(f"{source}: parameter '{param.name}' got {shown(value)}; allowed: "
                        f">= {param.minimum:g}{unit}")
    return out


def _existing_file(param: Parameter, value: Any, source: str, base: Path | None) -> str:
    """The absolute path of an existing file, resolved against the current directory (where
    the user typed it), since tasks run in their own work directories. An empty value is
    allowed when the declared default is empty (an optional file)."""
    text = str(value).strip()
    if not text and param.default == "":
        return ""
    base = Path(base) if base is not None else Path.cwd()
    p = base / Path(text).expanduser()  # an absolute path stays as it is
    if not p.is_file():
        what = f" ({param.help})" if param.help else ""
        where = "" if Path(text).expanduser().is_absolute() else f" (relative to {base})"
        raise UserError(f"{source}: parameter '{param.name}': file '{value}' does not exist"
                        f"{where}; allowed: an existing file{what}")
    return str(p.resolve())


def by_name(parameters: Iterable[Parameter]) -> dict[str, Parameter]:
    return {p.name: p for p in parameters}


def check_names(parameters: Sequence[Parameter], names: Iterable[str], source: str) -> None:
    known = by_name(parameters)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"{source}: unknown parameter{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; allowed: {', '.join(known)}")


def parse_assignments(items: Sequence[str], source: str = "--run") -> dict[str, str]:
    """``["threshold=5000", "N=2"]`` -> ``{"threshold": "5000", "N": "2"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{source}: '{item}' is not of the form key=value")
        out[key.strip()] = value
    return out


def complete(parameters: Sequence[Parameter], given: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Full canonical parameter set: unknown names rejected, defaults filled, types coerced."""
    check_names(parameters, given, source)
    out: dict[str, Any] = {}
    for p in parameters:
        if p.name in given:
            out[p.name] = coerce(p, given[p.name], source)
        elif p.required:
            raise UserError(f"{source}: parameter '{p.name}' is required ({p.help or _describe(p)})")
        else:
            out[p.name] = p.default
    return out


def argv_value(value: Any) -> str:
    """How a canonical value is written as ``k=v`` on a command line."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def as_argv(params: Mapping[str, Any], skip: Iterable[str] = ()) -> list[str]:
    skip = set(skip)
    return [f"{k}={argv_value(v)}" for k, v in params.items() if k not in skip and v is not None]
