"""The seam between a monitor and a running production: every request a monitor may make,
and what it gets back.

Requests and answers are plain data (str, int, float, bool, None, and lists and dicts of
them) so that the same requests can later cross a process boundary (a socket to a driver
that outlives its terminal) without the monitor changing. The driver side is
:class:`Control`; a monitor holds a *channel*, anything with
``request(op, **args) -> dict``; :class:`LocalChannel` is the in-process one. A request
that cannot be served raises :class:`ControlError` with a one-line message for the user.

The driver also *publishes*: the status every interval, batch-system notices, task outcomes
in verbose mode, the end of the production. A :class:`Bulletin` numbers what is published
so that every monitor reads what it has not seen yet with the ``updates`` request (polling
keeps the driver unaware of how many monitors there are, and a monitor that dies costs
nothing).

What this module will not do: hand out live objects (client, cluster, ledger). A monitor's
``debug`` console connects a Dask client of its own to the scheduler (``dask`` request).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..contract.errors import UserError
from ..ledger.records import CANCELLED, DONE, ERROR, FAILED, PENDING, RUNNING, STATES
from ..views.failure_groups import FACTS_FOR, failure_groups, render_ranking, task_facts
from ..views.heatmap import render_grid
from ..views.selection import ParameterSpace, SelectionError, format_value, is_term
from ..views.status_text import render_cluster, render_status

#: Every request, its arguments and what it answers: the whole of what a monitor may ask
#: and order. Answers are dicts; the keys named here are always present.
REQUESTS: dict[str, str] = {
    "summary": "() -> counts {state: n}, done, total, finished, complete, interval, verbose, "
               "backend, production",
    "updates": "(after: int) -> last: int, items: [{seq, time, kind, text}], summary",
    "status": "() -> text: the full status (tasks, progress, ETA, cluster, batch jobs)",
    "tasks": "(state: str|None, limit: int|None, select: [words]|None) -> rows: [task dicts], "
             "more: bool, matched: int",
    "find": "(prefix: str, limit: int) -> ids: [task ids starting with prefix]",
    "log": "(task: str|None, lines: int, select: [words]|None) -> task: dict, path: str|None, "
           "lines: [str], matched: int (tasks the selection names; the log is the first's)",
    "errors": "(select: [words]|None) -> groups: [{cause, reason, count, waiting, example, "
              "shared}]",
    "errors_by": "(select: [words]|None, width: int) -> text: parameters ranked by how "
                 "strongly failures depend on them, per cause",
    "grid": "(x: str, y: str, select: [words]|None, metric: str|None, colour: bool, "
            "width: int) -> text: the task states (or a metric) over x and y as a heat map",
    "axes": "() -> axes: [{name, type, unit, values: [str]}] the production's parameters "
            "(varying ones first), for completion",
    "complete": "(text: str) -> candidates: [str], final: bool: a selection word being typed",
    "retry": "(tasks: [ids]|None for every failed task, select: [words]|None) -> changed: "
             "int, asked: int",
    "cancel": "(tasks: [ids]|'all', select: [words]|None) -> changed: int",
    "clean": "() -> text",
    "futures": "() -> counts: {dask status: n}",
    "client": "() -> text: client, scheduler address, dashboard",
    "cluster": "() -> text: cluster, workers, threads, memory, batch jobs",
    "jobs": "() -> backend: str, jobs: [[id, state, reason, worker, runtime]]",
    "scale": "(workers: int) -> text",
    "adapt": "(minimum: int, maximum: int) -> text",
    "aggregate": "() -> lines: [str]",
    "set": "(interval: float|None, verbose: bool|None) -> interval, verbose",
    "backend_commands": "() -> backend: str, commands: [[name, help]]",
    "backend_command": "(name: str, arg: str) -> text",
    "stop": "(reason: str) -> stopped: bool; unfinished tasks resume on the next run",
    "finish": "() -> finishing: bool; a production with nothing left to run ends (lists "
              "its failures) instead of waiting for a retry",
    "dask": "() -> scheduler: the scheduler's address, tls: client credentials or None, for "
            "a debug console's own client",
}


class ControlError(UserError):
    """A request the driver refused, or a driver out of reach; one line for the user."""


class Bulletin:
    """What the driver published, numbered, the last ``keep`` items kept."""

    def __init__(self, keep: int = 1000):
        self._items: deque[dict] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        #: Called with each item as it is published (non-interactive runs print them).
        self.echo: Callable[[dict], None] | None = None

    def publish(self, text: str, kind: str = "notice", **extra: str) -> None:
        """``extra``: more renderings of the same item (a status's ``full`` block)."""
        with self._lock:
            self._seq += 1
            item = {"seq": self._seq, "time": time.time(), "kind": kind, "text": text, **extra}
            self._items.append(item)
        if self.echo is not None:
            self.echo(dict(item))

    def since(self, after: int) -> tuple[int, list[dict]]:
        with self._lock:
            return self._seq, [dict(i) for i in self._items if i["seq"] > after]

    @property
    def last(self) -> int:
        with self._lock:
            return self._seq


def _task_dict(row) -> dict:
    out = asdict(row)
    runtime = row.runtime
    if runtime is None and row.state == RUNNING and row.start is not None:
        runtime = max(0.0, time.time() - row.start)  # while running: so far
    out["runtime"] = runtime
    out["attempt"] = getattr(row, "attempt", row.attempts)  # a running task counts its current one
    return out


class Control:
    """Serves the requests of :data:`REQUESTS` from a running engine.

    ``loop`` is the production loop (interval, stop); ``aggregate`` runs the aggregators
    with an output callback. Neither knows about monitors.
    """

    def __init__(self, engine, loop, bulletin: Bulletin,
                 aggregate: Callable[[Callable[[str], None]], None]):
        self.engine = engine
        self.loop = loop
        self.bulletin = bulletin
        self._aggregate = aggregate
        self._handlers: dict[str, Callable[..., dict]] = {
            op: getattr(self, "_" + op) for op in REQUESTS}
        self._space: ParameterSpace | None = None
        self._order: list[str] = []

    def request(self, op: str, **args: Any) -> dict:
        handler = self._handlers.get(op)
        if handler is None:
            raise ControlError(f"unknown request {op!r}; known: {', '.join(REQUESTS)}")
        try:
            return handler(**args)
        except TypeError as exc:
            raise ControlError(f"request {op}: {exc}") from None
        except SelectionError as exc:  # a filter the user typed: one line, as every refusal
            raise ControlError(str(exc)) from None

    # ------------------------------------------------------------------ selection
    @property
    def space(self) -> ParameterSpace:
        """The production's parameters and their values, from the plan (they never change
        during a run: built once, a selection over 30,000 tasks is then set lookups)."""
        if self._space is None:
            plan = self.engine.plan
            self._order = [t.task_id for t in plan.tasks]
            self._space = ParameterSpace.build({t.task_id: t.params for t in plan.tasks},
                                               getattr(plan.script, "parameters", ()))
        return self._space

    def _selected(self, select: list[str] | None) -> list[str] | None:
        """Task ids a selection names (ids, unique prefixes, filter terms), or None when
        there is no selection."""
        if not select:
            return None
        space = self.space
        return space.select(list(select), self._order,
                            find=lambda prefix, limit: self.engine.ledger.find(prefix, limit=limit))

    # ------------------------------------------------------------------ reading
    def _summary(self) -> dict:
        counts = self.engine.ledger.counts()
        finished = self.engine.finished()
        return {"counts": counts, "done": counts[DONE], "total": sum(counts.values()),
                "finished": finished, "complete": finished and counts[DONE] == sum(counts.values()),
                "stopped": self.loop.stopped, "interval": self.loop.interval,
                "verbose": self.engine.verbose, "backend": self.engine.running.backend,
                "production": str(self.engine.plan.production_dir)}

    def _updates(self, after: int = 0) -> dict:
        last, items = self.bulletin.since(int(after))
        return {"last": last, "items": items, "summary": self._summary()}

    def _status(self) -> dict:
        return {"text": render_status(self.engine.snapshot())}

    def _tasks(self, state: str | None = None, limit: int | None = 50,
               select: list[str] | None = None) -> dict:
        if state is not None and state not in STATES:
            raise ControlError(f"unknown state {state!r}; states: {', '.join(STATES)}")
        chosen = self._selected(select)
        matched = None
        if chosen is None:
            rows = self.engine.ledger.tasks(state, limit=None if not limit else int(limit) + 1)
        else:  # the selection's tasks, most recently changed first, read in full only if shown
            wanted = set(chosen)
            facts = [f for f in task_facts(self.engine.ledger, use="order") if f[0] in wanted
                     and (state is None or f[1] == state)]  # (task_id, state, updated)
            facts.sort(key=lambda f: (-(f[2] or 0), f[0]))
            matched = len(facts)
            shown = facts[:int(limit) + 1] if limit else facts
            rows = [r for r in (self.engine.ledger.task(f[0]) for f in shown) if r is not None]
        more = bool(limit) and len(rows) > int(limit)
        rows = rows[:int(limit)] if limit else rows
        return {"rows": [_task_dict(r) for r in rows], "more": more, "matched": matched}

    def _find(self, prefix: str = "", limit: int = 50) -> dict:
        return {"ids": self.engine.ledger.find(prefix, limit=int(limit))}

    def _log(self, task: str | None = None, lines: int = 30, select: list[str] | None = None) -> dict:
        from ..run.tasks import log_path

        matched = 1
        if select:
            chosen = self._selected(select)
            if not chosen:
                raise ControlError(f"log {' '.join(select)}: no task matches")
            matched, task = len(chosen), chosen[0]
            if matched > 1:  # the most telling one: a failure before anything else
                states = {f[0]: f[1] for f in task_facts(self.engine.ledger, use="states")}
                rank = {ERROR: 0, FAILED: 1, RUNNING: 2}
                task = min(chosen, key=lambda t: rank.get(states.get(t), 3))
        if task is None:
            raise ControlError("log: give a task id or a selection")
        row = self.engine.ledger.task(task)
        if row is None:
            raise ControlError(f"{task}: no task with this id; 'tasks' lists them")
        path = log_path(self.engine.plan.production_dir, row.dirname)
        text: list[str] = []
        if path is not None:
            with open(path, errors="replace") as fh:
                text = fh.readlines()[-int(lines):]
        return {"task": _task_dict(row), "path": str(path) if path else None, "lines": text,
                "matched": matched}

    def _facts(self, select: list[str] | None, failures_only: bool = False) -> tuple[list, list[str] | None]:
        """Light rows of the tasks (of the selection, if any), and the selected ids."""
        facts = task_facts(self.engine.ledger, failures_only=failures_only)
        chosen = self._selected(select)
        if chosen is not None:
            wanted = set(chosen)
            facts = [f for f in facts if f.task_id in wanted]
        return facts, chosen

    def _errors(self, select: list[str] | None = None) -> dict:
        facts, _ = self._facts(select, failures_only=True)
        return {"groups": [g.as_dict() for g in failure_groups(facts, self.space)]}

    def _errors_by(self, select: list[str] | None = None, width: int = 80) -> dict:
        facts, chosen = self._facts(select, failures_only=True)
        excluded = self.engine.ledger.not_run()
        population = None
        if chosen is not None:
            skip = set(excluded)
            population, excluded = [t for t in chosen if t not in skip], []
        return {"text": render_ranking(facts, self.space, population=population, width=int(width),
                                       excluded=excluded)}

    def _grid(self, x: str, y: str, select: list[str] | None = None, metric: str | None = None,
              colour: bool = False, width: int = 80) -> dict:
        space = self.space
        words = list(select or [])
        if all(is_term(w) for w in words):  # a filter: one pass over the tasks
            flt, ids = (space.parse(words) if words else None), None
        else:  # task ids too: the map shows the tasks the selection names
            flt, ids = None, self._selected(words)
        facts = task_facts(self.engine.ledger, use=metric if metric in FACTS_FOR else "states")
        return {"text": render_grid(space, facts, x, y, selection=flt,
                                    metric=metric, colour=bool(colour), width=int(width),
                                    task_ids=ids, label=" ".join(words))}

    def _axes(self) -> dict:
        space = self.space
        names = space.varying + [n for n in space.names if n not in space.varying]
        return {"axes": [{"name": n, "type": space.axes[n].type, "unit": space.axes[n].unit,
                          "values": [format_value(v) for v in space.axes[n].values]}
                         for n in names]}

    def _complete(self, text: str = "") -> dict:
        candidates, final = self.space.complete(str(text))
        return {"candidates": candidates, "final": final}

    def _futures(self) -> dict:
        return {"counts": self.engine.futures_summary()}

    def _client(self) -> dict:
        from ..run.cluster_security import describe

        client, running = self.engine.client, self.engine.running
        security = running.describe_security() or describe(getattr(running, "security", None))
        return {"text": f"{client!r}\nscheduler {client.scheduler.address}"
                        f"\ndashboard {running.dashboard_link or '-'}\nsecurity {security}"}

    def _cluster(self) -> dict:
        running = self.engine.running
        lines = [f"{running.cluster!r} ({running.backend} backend)",
                 render_cluster(self.engine.cluster_info())]
        jobs = running.batch_jobs()
        if jobs:
            lines.append(f"{len(jobs)} batch jobs ('jobs' lists them)")
        return {"text": "\n".join(lines)}

    def _jobs(self) -> dict:
        jobs = self.engine.running.batch_jobs()
        return {"backend": self.engine.running.backend,
                "jobs": [[j.job_id, j.state, j.reason, j.worker, j.runtime] for j in jobs]}

    def _backend_commands(self) -> dict:
        commands = dict(getattr(self.engine.running, "commands", {}) or {})
        return {"backend": self.engine.running.backend,
                "commands": [[name, help_text] for name, (_, help_text) in sorted(commands.items())]}

    # ------------------------------------------------------------------ ordering
    def _retry(self, tasks: list[str] | None = None, select: list[str] | None = None) -> dict:
        chosen = self._selected(select)
        if chosen is not None:  # of the selected tasks, those a retry applies to
            ids = chosen
        else:
            ids = list(tasks) if tasks else self.engine.ledger.ids_in_state(FAILED, ERROR)
        changed = self.engine.retry(ids)
        self.loop.rearm()
        return {"changed": len(changed), "asked": len(ids)}

    def _cancel(self, tasks: list[str] | str = (), select: list[str] | None = None) -> dict:
        chosen = self._selected(select)
        if chosen is not None:
            ids = chosen
        else:
            ids = self.engine.ledger.ids_in_state(PENDING, RUNNING, FAILED) if tasks == "all" else list(tasks)
        return {"changed": len(self.engine.cancel(ids))}

    def _clean(self) -> dict:
        return {"text": self.engine.clean()}

    def _scale(self, workers: int) -> dict:
        if int(workers) < 0:
            raise ControlError("scale: the number of workers cannot be negative")
        return {"text": self.engine.scale(int(workers))}

    def _adapt(self, minimum: int, maximum: int) -> dict:
        if not 0 <= int(minimum) <= int(maximum):
            raise ControlError("adapt: need 0 <= MIN <= MAX")
        self.engine.running.adapt(int(minimum), int(maximum))
        return {"text": f"adaptive scaling between {minimum} and {maximum} workers"}

    def _aggregate(self) -> dict:
        lines: list[str] = []
        self._aggregate(lines.append)
        return {"lines": lines}

    def _set(self, interval: float | None = None, verbose: bool | None = None) -> dict:
        if interval is not None:
            if not float(interval) > 0:
                raise ControlError("interval: give a positive number of seconds")
            self.loop.set_interval(float(interval))
        if verbose is not None:
            self.engine.verbose = bool(verbose)
        return {"interval": self.loop.interval, "verbose": self.engine.verbose}

    def _backend_command(self, name: str, arg: str = "") -> dict:
        commands = dict(getattr(self.engine.running, "commands", {}) or {})
        if name not in commands:
            raise ControlError(f"{name}: not a command of the {self.engine.running.backend} backend")
        try:
            return {"text": str(commands[name][0](arg))}
        except Exception as exc:
            raise ControlError(f"{name}: {type(exc).__name__}: {exc}") from None

    def _finish(self) -> dict:
        self.loop.release()
        return {"finishing": True}

    def _dask(self) -> dict:
        """The scheduler's address and, with TLS, the client credentials (PEM text or file
        names): only the owner can ask, through the owner-only channel."""
        security = getattr(self.engine.running, "security", None)
        tls = None
        client = security.get_tls_config_for_role("client") if security is not None else {}
        if client.get("cert"):
            tls = {"ca": client["ca_file"], "cert": client["cert"], "key": client["key"]}
        return {"scheduler": self.engine.client.scheduler.address, "tls": tls}

    def _stop(self, reason: str = "stopped by the user") -> dict:
        self.loop.stop(reason)
        return {"stopped": True}


class LocalChannel:
    """A monitor's channel to a :class:`Control` in the same process."""

    def __init__(self, control: Control):
        self._control = control

    def request(self, op: str, **args: Any) -> dict:
        return self._control.request(op, **args)


def describe_end(summary: dict) -> str:
    """The line a monitor shows once nothing is left to run but some tasks did not succeed."""
    c = summary["counts"]
    why = "'errors' and 'log TASK' show why, " if c[ERROR] else ""
    return (f"nothing left to run: {c[ERROR]} failed for good, {c[CANCELLED]} cancelled. "
            f"{why}'retry' runs them again, 'exit' leaves.")

