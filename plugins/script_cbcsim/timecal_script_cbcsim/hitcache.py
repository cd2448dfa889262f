"""A sim-hit dump read once per worker, not once per task.

A rescan runs thousands of tasks (threshold x smearing x ...) over the same dump. The step
server of each worker (``timecal_core.run.step_server``) calls :func:`load` before forking a task, so
the dump's columns are read once into the server and every task forked afterwards sees them
through copy-on-write; each task applies its own selection (pt, subdet) to the cached arrays.

Bounds: one dump at a time per worker (a task naming another dump replaces it), and only a
dump whose columns fit in ``TIMECAL_CBCSIM_CACHE_MB`` (default 1024 MiB, 40 bytes a hit:
~26 million hits); a larger one is read in chunks by every task as before. The key is the
resolved path, size and modification time, so a dump rewritten in place is read again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .hits import SimHits

CACHE_ENV = "TIMECAL_CBCSIM_CACHE_MB"
DEFAULT_MB = 1024
BYTES_PER_HIT = sum(np.dtype(t).itemsize for t in SimHits.DTYPES.values())

_cached: tuple[tuple, SimHits, np.ndarray] | None = None  # (key, hits, sorted module ids)


def limit_bytes() -> int:
    try:
        return int(float(os.environ.get(CACHE_ENV, DEFAULT_MB)) * 2**20)
    except ValueError:
        return DEFAULT_MB * 2**20


def _key(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def lookup(path) -> tuple[SimHits, np.ndarray] | None:
    """The cached hits and module ids of this dump, if it is the one in memory."""
    key = _key(path)
    if _cached is None or key is None or _cached[0] != key:
        return None
    return _cached[1], _cached[2]


def load(path) -> bool:
    """Read the dump into the cache if it fits; True when it is cached afterwards."""
    global _cached
    if lookup(path) is not None:
        return True
    key = _key(path)
    if key is None:
        return False
    import uproot

    from .dump import TREE, read_dump

    try:
        with uproot.open(path) as f:
            entries = f[TREE].num_entries
    except Exception:  # not a dump: the task itself reports it
        return False
    if entries * BYTES_PER_HIT > limit_bytes():
        return False
    _cached = None  # one dump at a time: let the previous one go first
    hits = read_dump(path)
    _cached = (key, hits, np.unique(hits.module.astype(np.uint32)))
    return True


def clear() -> None:
    global _cached
    _cached = None
