"""Scan planning: a YAML grid (parameter -> value or list) becomes the cartesian product of
canonical parameter sets, each with a stable task id and directory, and the set of those
already complete on disk.

Identity is the full canonical parameter set (defaults included), hashed; it does not
depend on YAML key order or on how a number was written. Planning 30,000 points must stay
well under a second, so per-value work (coercion, JSON fragments) is done once per axis and
completion is read with one directory listing, never by opening result files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .hookspecs import ProductionScript
from .parameters import argv_value, check_names, coerce

ID_LENGTH = 10
RESULTS = "results"
TMP = ".tmp"  # in-flight work directories, under results/
SEPARATOR = "__"  # <readable>__<task id>


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    dirname: str
    params: Mapping[str, Any]
    script: str


@dataclass
class Plan:
    production_dir: Path
    script: ProductionScript
    tasks: list[TaskSpec]
    done: set[str] = field(default_factory=set)

    @property
    def pending(self) -> list[TaskSpec]:
        return [t for t in self.tasks if t.task_id not in self.done]

    @property
    def results_dir(self) -> Path:
        return self.production_dir / RESULTS


def task_id_of(fragments: tuple[str, ...]) -> str:
    return hashlib.sha1(("{" + ",".join(fragments) + "}").encode()).hexdigest()[:ID_LENGTH]


def _dir_token(name: str, value: Any) -> str:
    return f"{name}{argv_value(value)}".replace(".", "p").replace("/", "-").replace(" ", "-")


def _axes(script: ProductionScript, grid: Mapping[str, Any], source: str) -> list[list[Any]]:
    """Per declared parameter, its canonical values (defaults where the grid is silent)."""
    check_names(script.parameters, grid, source)
    axes = []
    for p in script.parameters:
        if p.name not in grid:
            if p.required:
                raise UserError(f"{source}: parameter '{p.name}' is required ({p.help or 'no default'})")
            axes.append([p.default])
            continue
        raw = grid[p.name]
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            raise UserError(f"{source}: parameter '{p.name}' has an empty list; give at least one value")
        canonical: list[Any] = []
        for v in values:
            c = coerce(p, v, source)
            if c in canonical:
                warnings.warn(f"{source}: parameter '{p.name}': value {v!r} repeats {c!r}; dropped",
                              stacklevel=3)
                continue
            canonical.append(c)
        axes.append(canonical)
    return axes


def completed_ids(production_dir: Path) -> set[str]:
    """Task ids whose result directory exists (they appear only by an atomic rename)."""
    results = Path(production_dir) / RESULTS
    try:
        entries = os.scandir(results)
    except FileNotFoundError:
        return set()
    with entries:
        return {e.name.rpartition(SEPARATOR)[2] for e in entries
                if SEPARATOR in e.name and not e.name.startswith(".")}


def plan_grid(script: ProductionScript, grid: Mapping[str, Any], production_dir: Path,
              source: str = "grid") -> Plan:
    """Expand ``grid`` for ``script``; nothing is written."""
    if not isinstance(grid, Mapping):
        raise UserError(f"{source}: expected a mapping 'parameter: value or [values]', got "
                        f"{type(grid).__name__}")
    axes = _axes(script, grid, source)
    names = [p.name for p in script.parameters]
    defaults = [p.default for p in script.parameters]
    show = [p.in_dirname and p.type != "path" for p in script.parameters]
    order = sorted(range(len(names)), key=names.__getitem__)  # hash in name order
    frag_axes = [[json.dumps(names[i]) + ":" + json.dumps(v, sort_keys=True) for v in axes[i]]
                 for i in range(len(names))]
    tok_axes = [[_dir_token(names[i], v) if show[i] and v != defaults[i] else "" for v in axes[i]]
                for i in range(len(names))]
    done_on_disk = completed_ids(production_dir)
    tasks: list[TaskSpec] = []
    done: set[str] = set()
    index_axes = [range(len(a)) for a in axes]
    for idx in itertools.product(*index_axes):
        tid = task_id_of(tuple(frag_axes[i][idx[i]] for i in order))
        readable = "_".join(t for t in (tok_axes[i][idx[i]] for i in range(len(names))) if t)
        dirname = (readable[:120] or "default") + SEPARATOR + tid
        params = {names[i]: axes[i][idx[i]] for i in range(len(names))}
        tasks.append(TaskSpec(tid, dirname, params, script.name))
        if tid in done_on_disk:
            done.add(tid)
    return Plan(Path(production_dir), script, tasks, done)


def production_dir(output: str, production_root: Path | None) -> Path:
    """Absolute ``-o`` as is; relative under timerc ``[paths] production`` (the seed's rule)."""
    out = Path(output).expanduser()
    if out.is_absolute():
        return out
    if production_root is None:
        raise UserError(f"-o {output}: a relative output needs [paths] production in timerc "
                        f"(or give an absolute path)")
    return production_root / out
