"""The production as a map: task states (or a resource) over two parameters as a text heat
map, one cell per (x, y) value pair, readable at 30 x 30 cells in an 80-column terminal.

A scan is a grid; which *region* failed, ran out of memory or is slow is what a list of task
ids hides. Every other parameter is summarised within the cell:

State maps (``grid X Y``): a cell shows the most urgent state among its tasks, in this
precedence (first that applies):

====  ==========================================================================
``X`` some task failed for good (``error``)
``!`` some task failed and waits for (or already runs) its retry
``>`` some task is running
``#`` every task is done
``+`` some tasks are done, the others wait (pending) or were cancelled
``.`` nothing done yet: the tasks are pending
``c`` every task not done was cancelled and none is done
(blank) no task has this pair of values (or the selection excludes them)
====  ==========================================================================

Failures come first because they are what the user acts on; "running" before "done" because a
cell still changing is not finished.

Resource maps (``grid X Y --metric M``): the cell's value on a ramp of 9 shade characters
``.:-=+*#%@`` from the smallest cell value to the largest, with the scale printed below:
``rss`` is the peak RSS of the cell's tasks (the largest: what a memory request must cover),
``runtime`` and ``cpu`` the mean over the cell's done tasks, ``failed`` the fraction of the
cell's tasks whose last attempt failed. A cell without a measurement yet is blank.

Axes: x across (columns), y down with its largest value on top, as in a plot. Column labels
are written vertically when they fit in 6 characters, otherwise the columns get one-character
keys listed below the map (as do row labels longer than 10 characters). Colour (ANSI) only
when asked for: the shell lets cmd2 decide (``allow_style``), ``BXRun --status`` when its
output is a terminal; the characters carry the whole information without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from typing import Any

from ..ledger.records import CANCELLED, DONE, ERROR, FAILED, PENDING, RUNNING
from ..textformat import format_bytes
from .selection import Filter, ParameterSpace, SelectionError, format_value

METRICS = ("rss", "runtime", "cpu", "failed")
SHADES = ".:-=+*#%@"
KEYS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_ROW_LABEL = 10
MAX_VERTICAL_LABEL = 6

#: glyph, meaning, ANSI colour (SGR) -- in precedence order
CELL_STATES = (
    ("X", "some failed for good", "1;31"),
    ("!", "some failed, retry waiting or running", "1;33"),
    (">", "some running", "1;36"),
    ("#", "all done", "32"),
    ("+", "some done, the rest pending or cancelled", "92"),
    (".", "pending", "2"),
    ("c", "cancelled", "35"),
)
_COLOUR = {glyph: sgr for glyph, _, sgr in CELL_STATES}
_SHADE_COLOURS = ("34", "34", "36", "36", "32", "32", "33", "31", "1;31")


def cell_glyph(states: Mapping[str, int], failed_before: int = 0) -> str:
    """The cell's character from its state counts (see the module's precedence)."""
    if states.get(ERROR):
        return "X"
    if states.get(FAILED) or failed_before:
        return "!"
    if states.get(RUNNING):
        return ">"
    total = sum(states.values())
    done = states.get(DONE, 0)
    if total and done == total:
        return "#"
    if done:
        return "+"
    if states.get(PENDING):
        return "."
    return "c" if states.get(CANCELLED) else " "


def _paint(text: str, sgr: str | None, colour: bool) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if colour and sgr and text.strip() else text


def _format_metric(metric: str, value: float) -> str:
    if metric == "rss":
        return format_bytes(value * 1024)
    if metric == "failed":
        return f"{100 * value:.0f}%"
    if value >= 3600:
        return f"{value / 3600:.1f}h"
    if value >= 60:
        return f"{value / 60:.1f}min"
    return f"{value:.3g}s"


def render_grid(space: ParameterSpace, rows: Iterable[Any], x: str, y: str,
                selection: Filter | None = None, metric: str | None = None,
                colour: bool = False, width: int = 80, task_ids: Iterable[str] | None = None,
                label: str = "") -> str:
    """The map of ``rows`` (tuples as :data:`~timecal_core.views.failure_groups.FACTS_FOR` reads them
    for ``metric``, or for ``states``) over parameters ``x`` and ``y``, their
    parameters taken from ``space``; ``selection`` narrows the tasks, ``task_ids`` too;
    ``label`` names the selection in the title (default: the filter's words)."""
    label = label or (selection.describe() if selection is not None else "")
    if metric is not None and metric not in METRICS:
        raise SelectionError(f"--metric {metric}: unknown; metrics: {', '.join(METRICS)}")
    xa, ya = space.axis(x, "x axis"), space.axis(y, "y axis")
    if x == y:
        raise SelectionError(f"grid {x} {y}: give two different parameters; varying: "
                             f"{', '.join(space.varying)}")
    xs, ys = list(xa.values), list(ya.values)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    cells: dict[tuple[int, int], dict[str, int]] = {}
    failed_before: dict[tuple[int, int], int] = {}
    values: dict[tuple[int, int], list[float]] = {}
    wanted = set(task_ids) if task_ids is not None else None
    matching = selection.matching(space) if selection is not None and selection.allowed else None
    x_of, y_of = space.column(x).get, space.column(y).get
    xget, yget = xi.get, yi.get
    failing_states, again = (FAILED, ERROR), (PENDING, RUNNING)
    n = 0
    for row in rows:  # 30,000 times: kept to lookups (task_id, state, reason lead every row)
        tid = row[0]
        if (wanted is not None and tid not in wanted) or (matching is not None and tid not in matching):
            continue
        i, j = xget(x_of(tid), -1), yget(y_of(tid), -1)
        if i < 0 or j < 0:
            continue
        key = (i, j)
        n += 1
        state = row[1]
        counts = cells.get(key)
        if counts is None:
            counts = cells[key] = {}
        counts[state] = counts.get(state, 0) + 1
        failed = state in failing_states or (row[2] is not None and state in again)
        if failed and state in again:
            failed_before[key] = failed_before.get(key, 0) + 1
        if metric is not None:  # rows as diagnosis.FACTS_FOR[metric] reads them
            if metric == "failed":
                value = float(failed)
            elif metric == "rss":
                value = row[3]
            elif state != DONE:
                value = None
            elif metric == "cpu":
                value = row[3]
            else:
                value = row[4] - row[3] if row[3] is not None and row[4] is not None else None
            if value is not None:
                values.setdefault(key, []).append(value)
    # drop values no selected task has: a filter on an axis narrows the map
    used_x = sorted({k[0] for k in cells})
    used_y = sorted({k[1] for k in cells})
    if not cells:
        what = f" matching {label}" if label else ""
        return f"grid {x} x {y}: no task{what}"
    if selection is not None and selection.allowed:
        xs_i = [i for i in range(len(xs)) if i in set(used_x) or xs[i] in selection.allowed.get(x, ())]
        ys_i = [i for i in range(len(ys)) if i in set(used_y) or ys[i] in selection.allowed.get(y, ())]
    else:
        xs_i, ys_i = list(range(len(xs))), list(range(len(ys)))

    # ------------------------------------------------------------ cell contents
    glyphs: dict[tuple[int, int], str] = {}
    sgr: dict[tuple[int, int], str] = {}
    scale: tuple[float, float] | None = None
    if metric is None:
        for key, counts in cells.items():
            glyphs[key] = cell_glyph(counts, failed_before.get(key, 0))
            sgr[key] = _COLOUR.get(glyphs[key], "")
    else:
        agg = {k: (max(v) if metric == "rss" else sum(v) / len(v)) for k, v in values.items()}
        if agg:
            low, high = min(agg.values()), max(agg.values())
            if metric == "failed":
                low, high = 0.0, max(high, 1e-12)
            scale = (low, high)
            for key, value in agg.items():
                level = 0 if high <= low else min(len(SHADES) - 1, int((value - low) / (high - low)
                                                                        * len(SHADES)))
                glyphs[key] = SHADES[level]
                sgr[key] = _SHADE_COLOURS[level]

    # ------------------------------------------------------------ layout
    x_labels = [format_value(xs[i]) for i in xs_i]
    y_labels = [format_value(ys[i]) for i in ys_i]
    y_keyed = max(map(len, y_labels)) > MAX_ROW_LABEL
    if y_keyed:
        y_labels = [KEYS[k % len(KEYS)] for k in range(len(ys_i))]
    labw = max(max(map(len, y_labels)), len(y) if len(y) <= MAX_ROW_LABEL else 0, 1)
    room = width - labw - 3
    longest = max(map(len, x_labels))
    x_keyed = False
    if len(xs_i) * (longest + 1) <= room:
        cw, header = longest + 1, "horizontal"
    else:
        cw = 2 if len(xs_i) * 2 <= room else 1
        header = "vertical" if longest <= MAX_VERTICAL_LABEL else "keys"
        x_keyed = header == "keys"
    lines = []
    title = (f"grid {x} (across) x {y} (down): {n} task{'s' if n != 1 else ''}, "
             f"{len(xs_i)} x {len(ys_i)} cells")
    if label:
        title += f", selection {label}"
    lines.append(title)
    if metric is not None:
        lines.append({"rss": "peak RSS per cell (largest of its tasks)",
                      "runtime": "mean runtime of the cell's done tasks",
                      "cpu": "mean CPU time (user+sys) of the cell's done tasks",
                      "failed": "fraction of the cell's tasks whose last attempt failed"}[metric])
    pad = " " * (labw + 3)
    if header == "horizontal":
        lines.append(pad + "".join(label.rjust(cw - 1) + " " for label in x_labels).rstrip())
    elif header == "vertical":
        for r in range(longest):
            lines.append(pad + "".join((label.rjust(longest)[r]).ljust(cw) for label in x_labels).rstrip())
    else:
        lines.append(pad + "".join(KEYS[k % len(KEYS)].ljust(cw) for k in range(len(xs_i))).rstrip())
    lines.append(" " * (labw + 1) + "+" + "-" * (len(xs_i) * cw + 1))
    for row_pos in reversed(range(len(ys_i))):
        j = ys_i[row_pos]
        cells_text = []
        for i in xs_i:
            glyph = glyphs.get((i, j), " ")
            cell = glyph.rjust(cw - 1) + " " if cw > 1 else glyph
            cells_text.append(_paint(cell, sgr.get((i, j)), colour) if glyph != " " else cell)
        lines.append(f"{y_labels[row_pos].rjust(labw)} | " + "".join(cells_text).rstrip())
    lines.append(f"{'':>{labw}} +" + "-" * (len(xs_i) * cw + 1))
    lines.append(f"{'':>{labw}}   {x} ->" + (f"  ({xa.unit})" if xa.unit else "")
                 + f"   rows: {y}" + (f" ({ya.unit})" if ya.unit else "") + ", largest on top")
    if x_keyed:
        lines += _key_list(x, [xs[i] for i in xs_i], width)
    if y_keyed:
        lines += _key_list(y, [ys[j] for j in ys_i], width)
    # ------------------------------------------------------------ legend
    if metric is None:
        tally: dict[str, int] = {}
        for glyph in glyphs.values():
            tally[glyph] = tally.get(glyph, 0) + 1
        entries = [f"{_paint(g, s, colour)} {meaning} ({tally.get(g, 0)} cell{'s' if tally.get(g, 0) != 1 else ''})"
                   for g, meaning, s in CELL_STATES]
        lines += _wrap(["legend (cells, first that applies):"] + entries, width)
    elif scale is None:
        lines.append(f"legend: no {metric} measured yet in these cells (blank)")
    else:
        low, high = scale
        step = (high - low) / len(SHADES)
        entries = [f"{_paint(s, _SHADE_COLOURS[k], colour)} {'>=' if k else '<'}"
                   f"{_format_metric(metric, low + step * (k if k else 1))}"
                   for k, s in enumerate(SHADES)]
        if high <= low:
            entries = [f"{_paint(SHADES[0], _SHADE_COLOURS[0], colour)} "
                       f"{_format_metric(metric, low)} (every cell)"]
        lines += _wrap([f"legend {metric} (min {_format_metric(metric, low)}, max "
                        f"{_format_metric(metric, high)}; blank: not measured):"] + entries, width)
    return "\n".join(lines)


def _key_list(name: str, values: Sequence[Any], width: int) -> list[str]:
    entries = [f"{KEYS[k % len(KEYS)]}={format_value(v)}" for k, v in enumerate(values)]
    return _wrap([f"{name}:"] + entries, width)


def _visible(text: str) -> int:
    import re

    return len(re.sub(r"\x1b\[[0-9;]*m", "", text))


def _wrap(entries: Sequence[str], width: int) -> list[str]:
    lines, current = [], ""
    for entry in entries:
        if current and _visible(current) + 2 + _visible(entry) > width:
            lines.append(current)
            current = "  " + entry
        else:
            current = f"{current}  {entry}" if current else entry
    if current:
        lines.append(current)
    return lines


def default_axes(space: ParameterSpace, order: Sequence[str] = ()) -> tuple[str, str] | None:
    """The first two varying parameters (the status page's map), in ``order`` (the grid's,
    as the user wrote it) where given, or None."""
    rank = {name: i for i, name in enumerate(order)}
    varying = sorted(space.varying, key=lambda n: (rank.get(n, len(rank)), n))
    return (varying[0], varying[1]) if len(varying) >= 2 else None
