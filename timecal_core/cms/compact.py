"""The compact layout of a CMSSW harvested file: the DQM output rewritten without its
``Hist1D`` folder (the deployed analyzer always books the 1,002 one-dimensional histograms;
the 2D maps hold the same numbers, see :mod:`.harvested_layout`)."""

from __future__ import annotations

import os
from pathlib import Path

from .fast_root import put_named
from .harvested_layout import HIST1D


def compact_file(path: Path) -> None:
    """Rewrite a harvested file in the compact layout: every object but the ``Hist1D``
    folder, copied as read (the 2D maps bin for bin, Info's strings), in place (a new file
    renamed over it). An object uproot cannot write is a ValueError naming it: the file is
    then left as it was."""
    import uproot

    path = Path(path)
    tmp = path.with_name(f".{path.name}.compact.tmp")
    try:
        with uproot.open(path) as source, uproot.recreate(tmp) as target:
            _copy_directory(source, target, path, "")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_directory(source, target, path: Path, where: str) -> None:
    import uproot

    for name, obj in source.iteritems(recursive=False, cycle=False):
        if isinstance(obj, uproot.ReadOnlyDirectory):
            if name != HIST1D:
                _copy_directory(obj, target.mkdir(name), path, f"{where}{name}/")
            continue
        value = str(obj) if type(obj).__name__.startswith("Model_TObjString") else obj
        try:
            if "/" in name:  # a DQM scalar element: <SmearingSeed>i=7</SmearingSeed>
                put_named(target, name, value)
            else:
                target[name] = value
        except (TypeError, NotImplementedError, ValueError) as exc:
            raise ValueError(f"{path}: cannot copy '{where}{name}' ({type(obj).__name__}) into the "
                             f"compact layout: {exc}") from None
