"""Running the registered aggregators over a production's finished tasks: at the end of a
production, from the monitor's ``aggregate``, and again whenever the production is rerun
complete. One aggregator failing never stops the others, nor fails the production."""

from __future__ import annotations

import traceback
from dataclasses import replace
from pathlib import Path

from ..contract.hookspecs import AggregationRequest
from ..contract.plugins import get_registry
from ..ledger.sqlite_ledger import Ledger
from ..run.tasks import finished_tasks


def finished_for_aggregation(production_dir: Path, ledger: Ledger | None) -> list:
    """Finished tasks from disk, with runtime and attempts from the ledger where known."""
    known = ledger.runtimes() if ledger is not None else {}
    out = []
    for task in finished_tasks(production_dir):
        runtime, attempts = known.get(task.task_id, (None, None))
        out.append(replace(task, runtime=runtime if runtime is not None else task.runtime,
                           attempts=attempts if attempts else task.attempts))
    return out


def run_aggregators(production_dir: Path, script_name: str, ledger: Ledger | None, timerc,
                    verbose: bool = False, out=print) -> bool:
    """Run every registered aggregator; one failing does not stop the others."""
    tasks = tuple(finished_for_aggregation(production_dir, ledger))
    request = AggregationRequest(Path(production_dir), script_name, tasks, timerc, verbose)
    ok = True
    for name, reg in sorted(get_registry().aggregators.items()):
        try:
            written = reg.item.run(request)
        except Exception as exc:
            ok = False
            text = " ".join(str(exc).split())  # one line, whatever the exception holds
            out(f"aggregator {name} ({reg.distribution}) failed: {type(exc).__name__}: "
                + (text[:300] + " ..." if len(text) > 300 else text))
            if verbose:
                out(traceback.format_exc())
            continue
        files = ", ".join(str(p) for p in written) or "nothing"
        out(f"aggregator {name}: {len(tasks)} tasks -> {files}")
    return ok
