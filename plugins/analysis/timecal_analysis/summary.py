"""The core aggregator: ``results/summary.parquet``, one row per finished task.

Physicists load it with pandas to find a task by its parameters, to see which output file
belongs to which point of the scan, and to spot slow or flaky points (runtime, attempts).
Parameters become columns of their own (``param.<name>`` would be noisier to query); the
provenance of each result (host, batch job, CPU, peak RSS, output size, software versions,
CMSSW release, cfg hash) follows them as ``prov_<name>`` columns."""

from __future__ import annotations

from pathlib import Path

from timecal_core.contract.hookspecs import AggregationRequest, Aggregator

SUMMARY_NAME = "summary.parquet"
FIXED_COLUMNS = ("task_id", "directory", "output", "runtime", "attempts")
PROVENANCE_PREFIX = "prov_"


def write_summary(request: AggregationRequest) -> list[Path]:
    import pandas as pd

    rows = []
    for task in request.tasks:
        # A parameter named like a fixed column keeps its value under "param_<name>".
        row = {(f"param_{name}" if name in FIXED_COLUMNS else name): value
               for name, value in task.params.items()}
        row.update(task_id=task.task_id, directory=str(task.directory), output=str(task.output),
                   runtime=task.runtime, attempts=task.attempts)
        provenance = getattr(task, "provenance", None) or {}
        row.update({PROVENANCE_PREFIX + key: value for key, value in provenance.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if rows:
        prov = sorted(c for c in frame.columns if c.startswith(PROVENANCE_PREFIX))
        params = [c for c in frame.columns if c not in FIXED_COLUMNS and c not in prov]
        frame = frame[list(FIXED_COLUMNS) + params + prov].sort_values("task_id", ignore_index=True)
        frame["runtime"] = frame["runtime"].astype("float64")
        frame["attempts"] = frame["attempts"].astype("Int64")
    target = Path(request.production_dir) / "results" / SUMMARY_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(SUMMARY_NAME + ".part")
    frame.to_parquet(tmp, index=False)
    tmp.replace(target)
    return [target]


def summary_aggregator() -> Aggregator:
    return Aggregator(name="summary", run=write_summary,
                      description="results/summary.parquet: parameters, output, runtime, "
                                  "attempts of every task")
