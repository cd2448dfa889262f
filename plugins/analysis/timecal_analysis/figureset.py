"""Which figures plotScan draws, and where each one's curves are in the store.

A figure shows one observable against the delay for every value of one scanned parameter
(curves, and the delay x parameter map), the other parameters fixed at one *slice*. Every
combination of the others is what a small scan wants and what a big one cannot have: a
3,000-task grid planned 5,720 figures, a 30,000-task one would plan a hundred thousand.
So, per scanned parameter:

- while the other parameters combine into at most ``ALL_SLICES_UP_TO`` slices, every one
  of them is drawn;
- beyond, a *reference* slice (each other parameter at its middle value, the lower of two
  middles: ``tofsmearing`` 0 of [0, 2]) and, one parameter at a time, that parameter at its
  smallest and at its largest value with the others at the reference: at most
  1 + 2 (k - 1) slices for k scanned parameters, whatever the number of values.

``--select`` narrows the grid first (``subdet=BLL`` fixes a parameter, ``threshold>=6000``
drops values); ``--all-slices`` asks for every combination whatever it costs.

The grid points are looked up in one index (a dict from the values of the grid's
parameters to the task), built once: a figure costs one lookup per curve, never a pass over
the table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Every combination of the other parameters is drawn while they make at most this many
#: slices per scanned parameter.
ALL_SLICES_UP_TO = 16


def reference_value(values: Sequence[Any]) -> Any:
    """The middle value (the lower one of two middles)."""
    return values[(len(values) - 1) // 2]


def slices(grid: Mapping[str, Sequence[Any]], parameter: str, every: bool = False) -> list[dict]:
    """The values of the other parameters at which ``parameter``'s figures are drawn."""
    others = [p for p in grid if p != parameter]
    if every or math.prod(len(grid[p]) for p in others) <= ALL_SLICES_UP_TO:
        return [dict(zip(others, combo)) for combo in itertools.product(*(grid[p] for p in others))]
    reference = {p: reference_value(grid[p]) for p in others}
    out = [reference]
    for p in others:
        for value in (grid[p][0], grid[p][-1]):
            if value != reference[p]:
                out.append({**reference, p: value})
    return out


def describe_choice(grid: Mapping[str, Sequence[Any]], scanned: Sequence[str], every: bool) -> str:
    """One line saying how the slices were chosen, for the terminal and index.html."""
    counts = {p: len(slices(grid, p, every)) for p in scanned}
    total = sum(counts.values())
    if every or all(n == math.prod(len(grid[q]) for q in grid if q != p) for p, n in counts.items()):
        return f"{total} slice(s): every combination of the other parameters"
    return (f"{total} slice(s): per scanned parameter, the others at their middle value, then each "
            f"at its smallest and largest (--all-slices for every combination: "
            f"{sum(math.prod(len(grid[q]) for q in grid if q != p) for p in scanned)})")


@dataclass(frozen=True)
class Panel:
    """One figure to draw: an observable's curves of ``parameter`` at ``fixed`` in ``mode``,
    one per value with a task, found at store index ``tasks[i]``."""

    parameter: str
    fixed: Mapping[str, Any]
    mode: str
    values: tuple
    tasks: tuple


class GridIndex:
    """The grid's points -> the store index of their task, built once over the tasks that
    are on the grid."""

    def __init__(self, names: Sequence[str], columns: Sequence[Sequence[Any]], indices: Sequence[int]):
        self.names = list(names)
        self._index = dict(zip(zip(*columns), indices)) if self.names else \
            ({(): int(indices[0])} if len(indices) else {})

    def task(self, point: Mapping[str, Any]) -> int | None:
        return self._index.get(tuple(point[n] for n in self.names))

    def panels(self, grid: Mapping[str, Sequence[Any]], modes: Sequence[str],
               every: bool = False) -> list[Panel]:
        """Every figure of one observable, in the order the index lists them."""
        scanned = [p for p, values in grid.items() if len(values) > 1] or list(grid)[:1]
        out = []
        for parameter in scanned:
            for fixed in slices(grid, parameter, every):
                found = [(v, self.task({**fixed, parameter: v})) for v in grid[parameter]]
                found = [(v, t) for v, t in found if t is not None]
                if not found:
                    continue
                values, tasks = zip(*found)
                out.extend(Panel(parameter, fixed, mode, values, tasks) for mode in modes)
        return out


def needed_tasks(panels: Sequence[Panel]) -> np.ndarray:
    return np.unique(np.fromiter((t for p in panels for t in p.tasks), dtype=np.int64))
