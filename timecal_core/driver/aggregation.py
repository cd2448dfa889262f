"""Running the registered aggregators over a production's finished tasks: at the end of a
production, from the monitor's ``aggregate``, and again whenever the production is rerun
complete. One aggregator failing never stops the others, nor fails the production.

They run in a process of their own (``python -m timecal_core.driver.aggregation``, the request as
JSON on its stdin, their lines relayed as they come): the driver of a 30,000-task production
would otherwise import pandas, pyarrow and uproot and keep what they allocate until it
exits (a third of its peak RSS), and reading thousands of files would hold the GIL its
completion thread needs while tasks still run (``aggregate`` mid-production). A child that
crashes or is killed costs the aggregation, never the driver.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from ..config.timerc import Timerc
from ..contract.hookspecs import AggregationRequest
from ..contract.plugins import get_registry
from ..ledger.records import LedgerUnavailable
from ..ledger.sqlite_ledger import Ledger
from ..run.tasks import FinishedTasks


def finished_for_aggregation(production_dir: Path, ledger: Ledger | None) -> FinishedTasks:
    """Finished tasks from disk, with runtime and attempts from the ledger where known; read
    lazily (see FinishedTasks): the aggregators' memory does not grow with the production."""
    known = ledger.runtimes() if ledger is not None else {}

    def amend(task):
        runtime, attempts = known.get(task.task_id, (None, None))
        return replace(task, runtime=runtime if runtime is not None else task.runtime,
                       attempts=attempts if attempts else task.attempts)

    return FinishedTasks(production_dir, amend)


def aggregate_here(production_dir: Path, script_name: str, ledger: Ledger | None, timerc,
                   verbose: bool = False, out=print) -> bool:
    """Run every registered aggregator in this process; one failing does not stop the others."""
    tasks = finished_for_aggregation(production_dir, ledger)
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


def run_aggregators(production_dir: Path, script_name: str, ledger: Ledger | None, timerc,
                    verbose: bool = False, out=print) -> bool:
    """Run every registered aggregator in a child process (see the module's docstring);
    its lines go to ``out`` as they come. False if one failed or the process died."""
    request = {"production_dir": str(production_dir), "script": script_name, "verbose": verbose,
               "ledger": ledger is not None,
               "timerc": None if timerc is None else {"path": str(timerc.path), "sections": timerc.sections}}
    with subprocess.Popen([sys.executable, "-m", "timecal_core.driver.aggregation"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            for line in proc.stdout:
                out(line.rstrip("\n"))
            code = proc.wait()
        except BaseException:
            proc.kill()
            raise
    if code < 0:
        out(f"aggregation stopped by signal {-code} (out of memory?); rerun 'aggregate' or the production")
    return code == 0


def _child() -> int:
    request = json.loads(sys.stdin.read())
    production_dir = Path(request["production_dir"])
    ledger = None
    if request["ledger"]:
        try:
            ledger = Ledger.open_readonly(production_dir)
        except LedgerUnavailable as exc:
            print(f"aggregation: runtimes and attempts unknown: {exc}", flush=True)
    timerc = None if request["timerc"] is None else Timerc(Path(request["timerc"]["path"]),
                                                           request["timerc"]["sections"])
    try:
        ok = aggregate_here(production_dir, request["script"], ledger, timerc, request["verbose"],
                            out=lambda line: print(line, flush=True))
    finally:
        if ledger is not None:
            ledger.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_child())
