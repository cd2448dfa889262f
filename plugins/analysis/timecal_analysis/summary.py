"""The core aggregator: ``results/summary.parquet``, one row per finished task.

Physicists load it with pandas to find a task by its parameters, to see which output file
belongs to which point of the scan, and to spot slow or flaky points (runtime, attempts).
Parameters become columns of their own (``param.<name>`` would be noisier to query); the
provenance of each result (host, batch job, CPU, peak RSS, output size, software versions,
CMSSW release, cfg hash) follows them as ``prov_<name>`` columns.

Rows are turned into Arrow columns a batch at a time: a Python dict per task (what a
DataFrame built from records holds first) cost ~5 kB a task, Arrow holds ~0.3 kB."""

from __future__ import annotations

from pathlib import Path

from timecal_core.contract.hookspecs import AggregationRequest, Aggregator

SUMMARY_NAME = "summary.parquet"
FIXED_COLUMNS = ("task_id", "directory", "output", "runtime", "attempts")
PROVENANCE_PREFIX = "prov_"
BATCH_ROWS = 4096


def _row(task) -> dict:
    # A parameter named like a fixed column keeps its value under "param_<name>".
    row = {(f"param_{name}" if name in FIXED_COLUMNS else name): value
           for name, value in task.params.items()}
    row.update(task_id=task.task_id, directory=str(task.directory), output=str(task.output),
               runtime=None if task.runtime is None else float(task.runtime),
               attempts=task.attempts)
    provenance = getattr(task, "provenance", None) or {}
    row.update({PROVENANCE_PREFIX + key: value for key, value in provenance.items()})
    return row


def summary_table(tasks):
    """The summary of ``tasks`` (any iterable; read once) as a pyarrow Table sorted by task id."""
    import pyarrow as pa

    from .arrowbatches import concat_promoting, pandas_metadata, table_of_rows

    parts, rows = [], []
    for task in tasks:
        rows.append(_row(task))
        if len(rows) >= BATCH_ROWS:
            parts.append(table_of_rows(rows))
            rows = []
    if rows or not parts:
        parts.append(table_of_rows(rows))
    table = concat_promoting(parts)
    if table.num_rows == 0:
        return table
    names = table.column_names
    prov = sorted(c for c in names if c.startswith(PROVENANCE_PREFIX))
    params = [c for c in names if c not in FIXED_COLUMNS and c not in prov]
    table = table.select(list(FIXED_COLUMNS) + params + prov)
    for name, kind in (("runtime", pa.float64()), ("attempts", pa.int64())):
        table = table.set_column(FIXED_COLUMNS.index(name), name, table[name].cast(kind))
    meta = {**(table.schema.metadata or {}), b"pandas": pandas_metadata(dtypes={"attempts": ("int64", "Int64")})}
    return table.sort_by("task_id").replace_schema_metadata(meta)


def write_summary(request: AggregationRequest) -> list[Path]:
    import pyarrow.parquet as pq

    table = summary_table(request.tasks)
    target = Path(request.production_dir) / "results" / SUMMARY_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(SUMMARY_NAME + ".part")
    pq.write_table(table, tmp)
    tmp.replace(target)
    return [target]


def summary_aggregator() -> Aggregator:
    from .aggregators import SUMMARY

    return SUMMARY
