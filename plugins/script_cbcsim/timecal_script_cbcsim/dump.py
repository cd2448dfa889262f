"""The sim-hit dump: one flat TTree ``simhits`` (branches and dtypes of :class:`SimHits`),
written by CMSSW's SimHitDumper (cmssw/SiPhase2TimingCalibration) or by :func:`write_dump`,
read in chunks so that a 10^7-hit dump never sits in memory at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from timecal_core.contract.errors import UserError

from .hits import SimHits

TREE = "simhits"


def write_dump(path, hits: SimHits, tree: str = TREE) -> None:
    import uproot

    with uproot.recreate(path) as f:
        # mktree: a TTree like SimHitDumper's (assigning a dict may create an RNTuple).
        out = f.mktree(tree, {name: SimHits.DTYPES[name] for name in SimHits.names()},
                       title="Outer Tracker sim hits (timecal sim-hit dump)")
        out.extend({name: getattr(hits, name).astype(SimHits.DTYPES[name]) for name in SimHits.names()})


def iterate_dump(path, step_size: int = 1_000_000, tree: str = TREE) -> Iterator[SimHits]:
    """Chunks of at most ``step_size`` hits; UserError naming the file for anything unreadable."""
    import uproot

    path = Path(path)
    try:
        handle = uproot.open(path)
    except Exception as exc:  # uproot raises many types for a non-ROOT or truncated file
        raise UserError(f"hits={path}: not a readable ROOT file ({exc})") from None
    with handle:
        if tree not in handle:
            raise UserError(f"hits={path}: no TTree '{tree}' (a sim-hit dump has one; found "
                            f"{', '.join(handle.keys(cycle=False)) or 'nothing'})")
        missing = [b for b in SimHits.names() if b not in handle[tree]]
        if missing:
            raise UserError(f"hits={path}: tree '{tree}' lacks branch(es) {', '.join(missing)}; "
                            f"a sim-hit dump has {' '.join(SimHits.names())}")
        for arrays in handle[tree].iterate(SimHits.names(), step_size=step_size, library="np"):
            yield SimHits.from_arrays(arrays)


def read_modules(path, tree: str = TREE) -> np.ndarray:
    """The sorted module ids of a dump (one pass over one branch, for the smearing table)."""
    for _ in iterate_dump(path, step_size=1, tree=tree):  # validates the file and tree
        break
    import uproot

    with uproot.open(path) as f:
        return np.unique(f[tree]["module"].array(library="np").astype(np.uint32))


def read_dump(path, tree: str = TREE) -> SimHits:
    parts = list(iterate_dump(path, tree=tree))
    if not parts:
        return SimHits.from_arrays({name: np.zeros(0) for name in SimHits.names()})
    return SimHits.concatenate(parts)
