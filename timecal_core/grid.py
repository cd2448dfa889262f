"""Scan planning: a YAML grid (parameter -> value or list) becomes the cartesian product of
canonical parameter sets, each with a stable task id and directory, and the set of those
already complete on disk.

Identity is the full canonical parameter set (defaults included), hashed; it does not
depend on YAML key order or on how a number was written. Planning 30,000 points must stay
well under a second, and a single axis of 100,000 values must plan as fast as a square of
the same size, so per-value work (coercion, checks, JSON fragments) is done once per
distinct value of an axis, with no search in a list anywhere. Values are refused here,
before anything is written (types, choices, minima, files, then the script's own
``check``). Completion is decided by :mod:`timecal_core.results`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .hookspecs import ProductionScript
from .parameters import argv_value, check_names, coerce
from .results import ID_LENGTH, RESULTS, SEPARATOR, ResultScan, scan_results

TMP = ".tmp"  # in-flight work directories, under results/


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
    #: what else ``results/`` holds (incomplete results, copies, foreign directories...)
    found: ResultScan = field(default_factory=ResultScan)

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


def _axes(script: ProductionScript, grid: Mapping[str, Any], source: str,
          base: Path | None = None) -> list[list[Any]]:
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
        canonical: dict[Any, None] = {}  # ordered, and a hash lookup (a list would be quadratic)
        for v in values:
            c = coerce(p, v, source, base)
            if c in canonical:
                warnings.warn(f"{source}: parameter '{p.name}': value {v!r} repeats {c!r}; dropped",
                              stacklevel=3)
                continue
            canonical[c] = None
        axes.append(list(canonical))
    if script.check is not None:
        script.check({p.name: tuple(axis) for p, axis in zip(script.parameters, axes)})
    return axes


def planned_ids(plan: Plan) -> dict[str, tuple[str, Mapping[str, Any]]]:
    return {t.task_id: (t.dirname, t.params) for t in plan.tasks}


def plan_grid(script: ProductionScript, grid: Mapping[str, Any], production_dir: Path,
              source: str = "grid", base: Path | None = None) -> Plan:
    """Expand ``grid`` for ``script``; nothing is written. Relative paths in it are relative
    to ``base`` (default: the current directory)."""
    if not isinstance(grid, Mapping):
        raise UserError(f"{source}: expected a mapping 'parameter: value or [values]', got "
                        f"{type(grid).__name__}")
    axes = _axes(script, grid, source, base)
    names = [p.name for p in script.parameters]
    defaults = [p.default for p in script.parameters]
    show = [p.in_dirname and p.type != "path" for p in script.parameters]
    order = sorted(range(len(names)), key=names.__getitem__)  # hash in name order
    frag_axes = [[json.dumps(names[i]) + ":" + json.dumps(v, sort_keys=True) for v in axes[i]]
                 for i in range(len(names))]
    tok_axes = [[_dir_token(names[i], v) if show[i] and v != defaults[i] else "" for v in axes[i]]
                for i in range(len(names))]
    tasks: list[TaskSpec] = []
    index_axes = [range(len(a)) for a in axes]
    for idx in itertools.product(*index_axes):
        tid = task_id_of(tuple(frag_axes[i][idx[i]] for i in order))
        readable = "_".join(t for t in (tok_axes[i][idx[i]] for i in range(len(names))) if t)
        dirname = (readable[:120] or "default") + SEPARATOR + tid
        params = {names[i]: axes[i][idx[i]] for i in range(len(names))}
        tasks.append(TaskSpec(tid, dirname, params, script.name))
    plan = Plan(Path(production_dir), script, tasks)
    plan.found = scan_results(plan.results_dir, planned_ids(plan))
    plan.done = set(plan.found.done)
    return plan


def production_dir(output: str, production_root: Path | None) -> Path:
    """Absolute ``-o`` as is; relative under timerc ``[paths] production`` (the seed's rule)."""
    out = Path(output).expanduser()
    if out.is_absolute():
        return out
    if production_root is None:
        raise UserError(f"-o {output}: a relative output needs [paths] production in timerc "
                        f"(or give an absolute path)")
    return production_root / out
