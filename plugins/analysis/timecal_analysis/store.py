"""The observables of a production on disk: a task table and the per-delay values, two
Parquet files in one directory, written a batch of files at a time.

- ``tasks.parquet``: one row per task (its index ``task``, ``task_id``, ``file`` with its
  ``mtime_ns`` and ``size``, then its parameters): a task's parameters are stored once.
- ``observables.parquet``: one row per task, mode and delay: ``task``, ``mode``, ``delay``
  and the observables of physics.md §7. Rows of one task are contiguous and each row group
  holds a run of consecutive tasks, so a reader that wants some tasks reads only the row
  groups holding them (their ``task`` statistics say which).

pandas reads them as two tables joined on ``task``::

    values = pd.read_parquet("observables.parquet")
    table = values.join(pd.read_parquet("tasks.parquet"), on="task")   # the wide table

A 30,000-task production has 30 million value rows: a wide table repeating 16 parameters on
each row took 14 GB to build and no plot needed it. Here the writer holds one batch of files
(``BATCH_FILES``) and the task table, the readers the rows they ask for.

Both files carry the same build id in their metadata (with the cache key: format and the
sources read); they are replaced one after the other, so a reader that finds two build ids
(a writer killed between the two renames) treats the cache as invalid and rebuilds it. The
per-task signatures let a rebuild keep the rows of every file that did not change and read
only the new or changed ones (``aggregate`` in the monitor, then the end of the production).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from timecal_core.contract.errors import UserError

VALUES_NAME = "observables.parquet"
TASKS_NAME = "tasks.parquet"
FORMAT = 2
METADATA_KEY = b"timecal"
TASK = "task"
SIGNATURE = ("file", "mtime_ns", "size")
#: Files read, then written as one row group, at a time: ~1,000 value rows each, so a batch
#: of 128 holds ~130,000 rows (~12 MB) whatever the size of the production.
BATCH_FILES = 128


@dataclass(frozen=True)
class Signature:
    """What a file's observables depend on besides the sources: its path, mtime and size."""

    file: str
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: str | Path, task_id: str = "", directory: Any = "") -> Signature:
        try:
            st = os.stat(path)
        except OSError:
            raise UserError(f"{path}: output of task {task_id} is missing (in {directory}); "
                            f"rerun the production") from None
        return cls(str(path), st.st_mtime_ns, st.st_size)


def _values_schema(keys: Sequence[str]):
    import pyarrow as pa

    return pa.schema([(TASK, pa.int32()), ("mode", pa.dictionary(pa.int8(), pa.string())),
                      ("delay", pa.float64())] + [(k, pa.float64()) for k in keys])


class StoreWriter:
    """Writes a new store into ``directory`` under temporary names; :meth:`close` puts both
    files in place. Tasks are numbered in the order they are added."""

    def __init__(self, directory: Path, key: Mapping[str, Any], value_keys: Sequence[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = {**key, "build": uuid.uuid4().hex}
        self.value_keys = list(value_keys)
        self.schema = _values_schema(self.value_keys).with_metadata(
            {METADATA_KEY: json.dumps(self.key)})
        stamp = f"{os.getpid()}.{self.key['build'][:8]}"
        self._values_tmp = self.directory / f".{VALUES_NAME}.{stamp}.tmp"
        self._tasks_tmp = self.directory / f".{TASKS_NAME}.{stamp}.tmp"
        self._writer = None
        self._task_rows: list[dict] = []
        self._task_parts: list = []
        self.count = 0

    # ------------------------------------------------------------------ values
    def _write(self, table) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self._values_tmp, self.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))

    def add_files(self, parts: Sequence[Any], signatures: Sequence[Signature],
                  task_ids: Sequence[str]) -> None:
        """One batch of files (``observables.FileColumns``): their rows, one row group."""
        import pyarrow as pa

        if not parts:
            return
        tasks, modes, columns = [], [], {k: [] for k in ["delay"] + self.value_keys}
        for part, signature, task_id in zip(parts, signatures, task_ids):
            index = self._add_task(task_id, signature, part.params)
            for mode, values in zip(part.modes, part.columns):
                n = len(values["delay"])
                tasks.append(np.full(n, index, dtype=np.int32))
                modes.append(np.full(n, mode, dtype=object))
                for k in columns:
                    columns[k].append(np.asarray(values[k], dtype=np.float64))
        arrays = [pa.array(np.concatenate(tasks)),
                  pa.array(np.concatenate(modes)).dictionary_encode().cast(self.schema.field("mode").type)]
        arrays += [pa.array(np.concatenate(columns[k])) for k in ["delay"] + self.value_keys]
        self._write(pa.Table.from_arrays(arrays, schema=self.schema))

    def copy_tasks(self, old: StoreFiles, keep: Mapping[int, tuple[str, Signature, Mapping[str, Any]]]) -> None:
        """The rows of ``old``'s tasks in ``keep`` (old index -> task id, signature,
        parameters), renumbered, a row group at a time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not keep:
            return
        renumber = np.full(old.n_tasks, -1, dtype=np.int64)
        for old_index in sorted(keep):
            task_id, signature, params = keep[old_index]
            renumber[old_index] = self._add_task(task_id, signature, params)
        wanted = np.flatnonzero(renumber >= 0)
        for group in old.row_groups_of(wanted):
            table = old.file.read_row_group(group, columns=self.schema.names)
            old_tasks = table[TASK].to_numpy()
            rows = renumber[old_tasks] >= 0
            if not rows.any():
                continue
            table = table.filter(pa.array(rows))
            table = table.set_column(0, TASK, pa.array(renumber[table[TASK].to_numpy()].astype(np.int32)))
            mode = pc.cast(table["mode"], pa.string()).dictionary_encode()
            table = table.set_column(1, "mode", mode.cast(self.schema.field("mode").type))
            self._write(table.replace_schema_metadata(self.schema.metadata))

    # ------------------------------------------------------------------ tasks
    def _add_task(self, task_id: str, signature: Signature, params: Mapping[str, Any]) -> int:
        from .observables import param_column

        index = self.count
        self.count += 1
        row = {TASK: index, "task_id": task_id, "file": signature.file,
               "mtime_ns": signature.mtime_ns, "size": signature.size}
        row.update({param_column(name): _scalar(value) for name, value in params.items()})
        self._task_rows.append(row)
        if len(self._task_rows) >= 4096:
            self._flush_tasks()
        return index

    def _flush_tasks(self) -> None:
        from .arrowbatches import table_of_rows

        if self._task_rows:
            self._task_parts.append(table_of_rows(self._task_rows))
            self._task_rows = []

    def close(self) -> None:
        """Put both files in place: the values first, then the task table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .arrowbatches import concat_promoting, pandas_metadata

        try:
            if self._writer is None:
                self._write(self.schema.empty_table())
            self._writer.close()
            self._flush_tasks()
            if self._task_parts:
                tasks = concat_promoting(self._task_parts)
            else:
                tasks = pa.table({TASK: pa.array([], pa.int32()), "task_id": pa.array([], pa.string()),
                                  "file": pa.array([], pa.string()), "mtime_ns": pa.array([], pa.int64()),
                                  "size": pa.array([], pa.int64())})
            tasks = tasks.set_column(0, TASK, tasks[TASK].cast(pa.int32()))
            # pandas reads it indexed by task: values.join(tasks, on="task")
            meta = {b"pandas": pandas_metadata(index=TASK, dtypes={TASK: ("int32", "int32")}),
                    METADATA_KEY: json.dumps(self.key).encode()}
            pq.write_table(tasks.replace_schema_metadata(meta), self._tasks_tmp, compression="zstd")
            os.replace(self._values_tmp, self.directory / VALUES_NAME)
            os.replace(self._tasks_tmp, self.directory / TASKS_NAME)
        finally:
            for tmp in (self._values_tmp, self._tasks_tmp):
                tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for tmp in (self._values_tmp, self._tasks_tmp):
            tmp.unlink(missing_ok=True)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str, bool)) else json.dumps(value)


# --------------------------------------------------------------------------- reading
@dataclass
class Cube:
    """Values of some tasks as dense arrays ``[task, mode, delay]`` (NaN where a task lacks a
    delay or a mode), in the order the tasks were asked for."""

    tasks: np.ndarray
    modes: list[str]
    delays: np.ndarray
    values: dict[str, np.ndarray]
    present: np.ndarray  # [task, mode, delay]: the task has a row there


class StoreFiles:
    """The two files of a store opened with pyarrow alone (what an aggregator needs to keep
    unchanged rows: the aggregators run in the driver, which should not import pandas)."""

    def __init__(self, directory: Path):
        import pyarrow.parquet as pq

        self.directory = Path(directory)
        self.values_path = self.directory / VALUES_NAME
        self.tasks_path = self.directory / TASKS_NAME
        try:
            self.file = pq.ParquetFile(self.values_path)
            self.task_file = pq.ParquetFile(self.tasks_path)
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.directory}: no readable observables store ({exc})") from None
        self.key = _key(self.file.schema_arrow.metadata)
        task_key = _key(self.task_file.schema_arrow.metadata)
        if self.key is None or task_key is None or self.key.get("build") != task_key.get("build"):
            raise UserError(f"{self.directory}: {VALUES_NAME} and {TASKS_NAME} come from different "
                            f"builds (a rebuild was interrupted); rerun plotScan with --cache")
        self.n_tasks = self.task_file.metadata.num_rows
        meta = self.file.metadata
        column = self.file.schema_arrow.get_field_index(TASK)
        lows, highs = [], []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(column).statistics
            if stats is None or not stats.has_min_max:  # never expected from our writer
                lows.append(0)
                highs.append(self.n_tasks)
            else:
                lows.append(stats.min)
                highs.append(stats.max)
        self._lows, self._highs = np.asarray(lows, np.int64), np.asarray(highs, np.int64)
        self.value_keys = [n for n in self.file.schema_arrow.names if n not in (TASK, "mode", "delay")]

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (Path(directory) / VALUES_NAME).is_file() and (Path(directory) / TASKS_NAME).is_file()

    def signatures(self) -> dict[Signature, tuple[int, str]]:
        """Each task's file signature -> (its index, its task id)."""
        t = self.task_file.read(columns=[TASK, "task_id", *SIGNATURE])
        return {Signature(f, m, s): (i, tid) for i, tid, f, m, s in zip(
            *(t[c].to_pylist() for c in (TASK, "task_id", *SIGNATURE)))}

    def row_groups_of(self, tasks: np.ndarray) -> list[int]:
        """The row groups holding rows of ``tasks`` (sorted indices)."""
        tasks = np.unique(np.asarray(tasks, dtype=np.int64))
        if not len(tasks):
            return []
        first = np.searchsorted(tasks, self._lows, side="left")
        past = np.searchsorted(tasks, self._highs, side="right")
        return [int(g) for g in np.flatnonzero(past > first)]


class Store(StoreFiles):
    """A store opened for reading: the task table in memory (pandas, indexed by ``task``),
    the values read on demand."""

    def __init__(self, directory: Path):
        import pandas as pd

        super().__init__(directory)
        self.tasks: pd.DataFrame = self.task_file.read().to_pandas()
        if self.tasks.index.name != TASK:
            self.tasks = self.tasks.set_index(TASK)

    @property
    def parameters(self) -> list[str]:
        return [c for c in self.tasks.columns if c not in ("task_id",) + SIGNATURE]

    def read(self, columns: Sequence[str], tasks: Iterable[int]) -> Cube:
        """The values of ``columns`` for ``tasks`` as a :class:`Cube`. Only the row groups
        holding them are read, one at a time, each scattered into the cube at once (modes by
        their dictionary codes, never as strings): the memory is the cube's and one row
        group's, whatever the number of rows read."""
        tasks = np.asarray(list(tasks), dtype=np.int64)
        local = np.full(max(self.n_tasks, 1), -1, dtype=np.int64)
        local[tasks] = np.arange(len(tasks))
        wanted = [TASK, "mode", "delay"] + list(columns)
        modes: list[str] = []
        delays = np.zeros(0)
        present = np.zeros((len(tasks), 0, 0), dtype=bool)
        values = {name: np.full((len(tasks), 0, 0), np.nan) for name in columns}
        for group in self.row_groups_of(tasks):
            table = self.file.read_row_group(group, columns=wanted)
            rows = local[table[TASK].to_numpy()]
            keep = rows >= 0
            if not keep.any():
                continue
            row_mode = self._mode_codes(table["mode"], modes)[keep]
            delay = table["delay"].to_numpy()[keep]
            new_delays = np.setdiff1d(delay, delays)
            if len(new_delays) or present.shape[1] < len(modes):  # grow the cube's axes
                merged = np.union1d(delays, new_delays)
                at = np.searchsorted(merged, delays)
                grown = np.zeros((len(tasks), len(modes), len(merged)), dtype=bool)
                grown[:, :present.shape[1], at] = present
                present = grown
                for name in columns:
                    cube = np.full(grown.shape, np.nan)
                    cube[:, :values[name].shape[1], at] = values[name]
                    values[name] = cube
                delays = merged
            where = (rows[keep], row_mode, np.searchsorted(delays, delay))
            present[where] = True
            for name in columns:
                values[name][where] = table[name].to_numpy()[keep]
        order = sorted(range(len(modes)), key=lambda i: _mode_order(modes[i]))
        return Cube(tasks, [modes[i] for i in order], delays,
                    {name: cube[:, order] for name, cube in values.items()}, present[:, order])

    @staticmethod
    def _mode_codes(column, modes: list[str]) -> np.ndarray:
        """Each row's mode as an index into ``modes`` (extended with modes not seen yet),
        from the dictionary codes of the column's chunks."""
        out = []
        for chunk in column.chunks:
            lookup = []
            for mode in chunk.dictionary.to_pylist():
                if mode not in modes:
                    modes.append(mode)
                lookup.append(modes.index(mode))
            codes = chunk.indices.to_numpy(zero_copy_only=False)
            out.append(np.asarray(lookup, dtype=np.int64)[codes] if len(lookup) else np.zeros(0, np.int64))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def table(self, columns: Sequence[str] | None = None):
        """The wide table (every value row with its task's parameters), as the cache was
        before format 2: for small scans and notebooks; 30,000 tasks make 30 million rows."""
        # Through the file opened with the task table: a store rewritten since is not mixed in.
        values = self.file.read(columns=None if columns is None else [TASK, "mode", "delay", *columns])
        values = values.replace_schema_metadata(None).to_pandas()
        tasks = self.tasks.drop(columns=["mtime_ns", "size"])
        return values.join(tasks, on=TASK).drop(columns=[TASK])


def _mode_order(mode: str):
    from timecal_core.cms.harvested_layout import MODES

    return (MODES.index(mode), "") if mode in MODES else (len(MODES), mode)


def _key(metadata) -> dict | None:
    try:
        return json.loads((metadata or {})[METADATA_KEY])
    except (KeyError, ValueError, TypeError):
        return None


def read_key(directory: Path) -> dict | None:
    """The cache key of the store in ``directory`` (None when absent or unreadable)."""
    import pyarrow.parquet as pq

    try:
        values = _key(pq.read_schema(Path(directory) / VALUES_NAME).metadata)
        tasks = _key(pq.read_schema(Path(directory) / TASKS_NAME).metadata)
    except (OSError, ValueError):
        return None
    if values is None or tasks is None or values.get("build") != tasks.get("build"):
        return None
    return values


def batches(items: Iterable[Any], size: int | None = None) -> Iterator[list]:
    size = size or BATCH_FILES
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
