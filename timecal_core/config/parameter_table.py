"""What a script accepts, as one table: ``BXRun --script NAME --help`` and the home shell's
``params NAME`` show the same table of a script's parameters, so the answer does not depend
on where it was asked."""

from __future__ import annotations

import shutil
import textwrap

from ..contract.hookspecs import Parameter, ProductionScript
from ..textformat import render_table


def _allowed(p: Parameter) -> str:
    parts = []
    if p.choices:
        parts.append(" | ".join(str(c) for c in p.choices))
    if p.minimum is not None and p.type in ("int", "float"):
        parts.append(f">= {p.minimum:g}")
    if p.type == "path":
        parts.append("an existing file" + (" or empty" if p.default == "" else ""))
    if p.type == "bool":
        parts.append("true | false")
    return "; ".join(parts)


def _default(p: Parameter) -> str:
    if p.required:
        return "(required)"
    if p.default is None:
        return ""
    if p.default == "":
        return "''"
    return str(p.default)


def parameter_table(script: ProductionScript, width: int | None = None) -> str:
    """The script's parameters as one table (name, type, default, unit, allowed values,
    help); a ``*`` marks the parameters that change the work of a task (``--pilot`` spans
    them). Wider than ``width`` (default: the terminal's), the help goes under each row."""
    rows = [(p.name + (" *" if getattr(p, "work", False) else ""), p.type, _default(p), p.unit,
             _allowed(p), p.help) for p in script.parameters]
    width = width or shutil.get_terminal_size((100, 24)).columns
    head = f"Parameters of script '{script.name}'" + (f" ({script.description})" if script.description else "")
    lines = [head + ":", _render_parameters(rows, width)]
    if any(getattr(p, "work", False) for p in script.parameters):
        lines.append("* changes the work of a task: BXRun --pilot spans it")
    lines.append("Give them as K=V with --run, or as 'parameter: value or [values]' in a --yaml grid.")
    return "\n".join(lines)


ALLOWED_WIDTH = 24  # the allowed column wraps to this when the table is too wide
HEADINGS = ("parameter", "type", "default", "unit", "allowed", "help")


def _render_parameters(rows: list[tuple], width: int) -> str:
    """One row per parameter when it fits in ``width``; otherwise the 'allowed' cells wrap
    and each parameter's help goes on indented lines under its row, so that the table reads
    in an 80-column terminal."""
    widths = [max(len(HEADINGS[i]), *(len(str(r[i])) for r in rows)) for i in range(6)] \
        if rows else [len(h) for h in HEADINGS]
    if sum(widths) + 10 <= width or not rows:
        return render_table(HEADINGS, rows)
    table, groups = [], []
    for r in rows:
        allowed = textwrap.wrap(str(r[4]), ALLOWED_WIDTH) or [""]
        table.append((*r[:4], allowed[0]))
        table += [("", "", "", "", more) for more in allowed[1:]]
        groups.append((len(allowed), textwrap.wrap(str(r[5]), max(30, width - 6))))
    lines = render_table(HEADINGS[:5], table).splitlines()
    out, i = lines[:2], 2
    for n, helps in groups:
        out += lines[i:i + n] + ["      " + h for h in helps]
        i += n
    return "\n".join(out)
