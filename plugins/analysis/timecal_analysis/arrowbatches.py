"""Rows to Arrow a batch at a time, for tables written by the aggregators: a batch of
records becomes columns at once, and the batches are joined with their types unified
(a column all None in one batch and numbers in the next; a parameter that one old result
holds as text). Kept apart so that the summary and the observables' task table agree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _column(values: list[Any]):
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed kinds (5000 and "5000"): kept as text rather than refused.
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v)
                         for v in values], type=pa.string())


def table_of_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None):
    """A pyarrow Table of ``rows`` (dicts; a key missing from a row is null), columns in
    first-seen order unless ``names`` gives them."""
    import pyarrow as pa

    if names is None:
        names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


def concat_promoting(parts: Sequence[Any]):
    """One table of ``parts``, columns missing from a part filled with nulls, a column's
    types unified (null -> any, int -> float); kinds that cannot be unified become text."""
    import pyarrow as pa

    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    kinds: dict[str, set] = {}
    for part in parts:
        for field in part.schema:
            if not pa.types.is_null(field.type):
                kinds.setdefault(field.name, set()).add(field.type)
    text = {name for name, types in kinds.items() if len(types) > 1}
    fixed = []
    for part in parts:
        for name in text & set(part.column_names):
            i = part.column_names.index(name)
            values = [None if v is None else v if isinstance(v, str) else json.dumps(v)
                      for v in part[name].to_pylist()]
            part = part.set_column(i, name, pa.array(values, type=pa.string()))
        fixed.append(part)
    return pa.concat_tables(fixed, promote_options="permissive")


def pandas_metadata(index: str | None = None, dtypes: Mapping[str, tuple[str, str]] | None = None) -> bytes:
    """The ``pandas`` schema metadata that makes ``pd.read_parquet`` index a table by the
    column ``index`` and read ``dtypes`` (name -> (pandas type, numpy type), e.g. the
    nullable ``("int64", "Int64")`` of a count with gaps), written without importing pandas
    (an aggregator in the driver would pay ~100 MB for it). Columns not named keep the
    types Arrow gives them."""
    import pyarrow as pa

    columns = [{"name": name, "field_name": name, "pandas_type": kinds[0], "numpy_type": kinds[1],
                "metadata": None} for name, kinds in (dtypes or {}).items()]
    return json.dumps({
        "index_columns": [index] if index else [],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}] if index else [],
        "columns": columns, "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.0.0",
    }).encode()
