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


def with_pandas_dtypes(table, dtypes: Mapping[str, str]):
    """``table`` with pandas metadata saying which columns pandas reads as ``dtypes`` (the
    nullable ``Int64`` of a count with gaps, rather than float)."""
    import pyarrow as pa

    head = table.slice(0, 1).to_pandas()
    for name, dtype in dtypes.items():
        if name in head:
            head[name] = head[name].astype(dtype)
    meta = pa.Schema.from_pandas(head, preserve_index=False).metadata
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
