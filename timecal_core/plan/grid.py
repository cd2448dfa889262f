"""Scan planning: a YAML grid (parameter -> value or list) becomes the cartesian product of
canonical parameter sets, each with a stable task id and directory, and the set of those
already complete on disk.

Identity is the full canonical parameter set (defaults included), hashed; it does not
depend on YAML key order or on how a number was written. Planning 30,000 points must stay
well under a second, and a single axis of 100,000 values must plan as fast as a square of
the same size, so per-value work (coercion, checks, JSON fragments) is done once per
distinct value of an axis, with no search in a list anywhere. Values are refused here,
before anything is written (types, choices, minima, files, then the script's own
``check``). Completion is decided by :mod:`timecal_core.plan.completion`.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import math
import operator
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from json.encoder import encode_basestring_ascii as _encode_str

from ..config.parameters import argv_value, check_names, coerce
from ..contract.errors import UserError
from ..contract.hookspecs import ProductionScript
from .completion import ID_LENGTH, RESULTS, ResultScan, SEPARATOR, scan_results

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
    #: the tasks this run submits (a pilot's few); None: every task not done. The others of
    #: the grid are in the ledger too, ``planned``: every count is over the whole grid.
    run: set[str] | None = None
    #: parameter names in the order the grid gives them (the YAML's), for maps and tables
    order: tuple[str, ...] = ()

    @property
    def pending(self) -> list[TaskSpec]:
        return [t for t in self.tasks if t.task_id not in self.done
                and (self.run is None or t.task_id in self.run)]

    @property
    def results_dir(self) -> Path:
        return self.production_dir / RESULTS


def _json_scalar(value: Any) -> str:
    """``json.dumps(value, sort_keys=True)``, character for character (task ids depend on
    it), at a fraction of its cost for the scalars parameters are."""
    kind = type(value)
    if kind is float:
        return float.__repr__(value)  # finite: coerce refuses nan and inf
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return _encode_str(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True)


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
        try:
            script.check({p.name: tuple(axis) for p, axis in zip(script.parameters, axes)})
        except UserError as exc:  # the script's own rule: named with the file it applies to
            if str(exc).startswith(source):
                raise
            raise UserError(f"{source}: {exc}") from None
    return axes


def plan_grid(script: ProductionScript, grid: Mapping[str, Any], production_dir: Path,
              source: str = "grid", base: Path | None = None,
              confirm: Callable[[int, Mapping[str, Any]], None] | None = None) -> Plan:
    """Expand ``grid`` for ``script``; nothing is written. Relative paths in it are relative
    to ``base`` (default: the current directory). ``confirm(n, first_point)`` is called once
    the values are checked and before the ``n`` points are expanded (it may raise UserError:
    a huge grid is refused before it takes the memory)."""
    if not isinstance(grid, Mapping):
        raise UserError(f"{source}: expected a mapping 'parameter: value or [values]', got "
                        f"{type(grid).__name__}")
    axes = _axes(script, grid, source, base)
    if confirm is not None:
        confirm(math.prod(len(a) for a in axes),
                {p.name: axis[0] for p, axis in zip(script.parameters, axes)})
    names = [p.name for p in script.parameters]
    defaults = [p.default for p in script.parameters]
    show = [p.in_dirname and p.type != "path" for p in script.parameters]
    order = sorted(range(len(names)), key=names.__getitem__)  # hash in name order
    frag_axes = [[json.dumps(names[i]) + ":" + _json_scalar(v) for v in axes[i]]
                 for i in range(len(names))]
    tok_axes = [[_dir_token(names[i], v) if show[i] and v != defaults[i] else "" for v in axes[i]]
                for i in range(len(names))]
    # one tuple (value, hash fragment, directory token) per distinct value; each point is then
    # a few joins and one hash, with no lookup that grows with an axis
    items = [list(zip(axes[i], frag_axes[i], tok_axes[i])) for i in range(len(names))]
    if len(order) > 1:
        in_hash_order = operator.itemgetter(*order)
    else:
        in_hash_order = tuple  # zero or one parameter: already in order
    sha1, name, tasks, planned = hashlib.sha1, script.name, [], {}
    # The loop allocates only acyclic objects, but so many that the cyclic collector would
    # run over and over across all of them (most of the planning time at 100,000 points).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for combo in itertools.product(*items):
            values, frags, toks = zip(*combo) if combo else ((), (), ())
            tid = sha1(("{" + ",".join(in_hash_order(frags)) + "}").encode()).hexdigest()[:ID_LENGTH]
            readable = "_".join(filter(None, toks))
            dirname = (readable[:120] or "default") + SEPARATOR + tid
            params = dict(zip(names, values))
            tasks.append(TaskSpec(tid, dirname, params, name))
            planned[tid] = (dirname, params)
        declared = [p.name for p in script.parameters]
        order = tuple([n for n in grid if n in declared] + [n for n in declared if n not in grid])
        plan = Plan(Path(production_dir), script, tasks, order=order)
        plan.found = scan_results(plan.results_dir, planned, script.verify)  # one params.json per result
    finally:
        if collecting:
            gc.enable()
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
