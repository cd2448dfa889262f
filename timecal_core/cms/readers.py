"""Reading harvested files: the 2D maps of one file (physics.md §6), as the observables
and the calibration read them (the 1D histograms are read by the analysis' fast reader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .harvested_layout import HARVESTED_PREFIX, MODES, delay_rows


@dataclass
class ScanMaps:
    """The 2D maps of one harvested file, indexed [delay, x-bin incl. flows]."""

    path: Path
    delays: np.ndarray
    offset_scan: dict[str, np.ndarray]  # mode -> [n_delays, 13]
    hits_true: dict[str, np.ndarray]  # mode -> [n_delays, 13]
    attribution: dict[str, np.ndarray]  # mode -> [n_delays, 7]
    errors: dict[str, np.ndarray]  # mode -> sqrt(sumw2) of OffsetScan, [n_delays, 13]


def read_maps(path: Path, prefix: str = HARVESTED_PREFIX) -> ScanMaps:
    """Read the OffsetScan/HitsTrueNumberScan/AttributionScan maps of a harvested file.

    Raises KeyError naming the missing object (callers turn it into a UserError).
    """
    import uproot

    path = Path(path)
    with uproot.open(path) as f:
        def get(name):
            key = f"{prefix}/Hist2D/{name}"
            try:
                return f[key]
            except (KeyError, uproot.KeyInFileError) as exc:
                raise KeyError(f"{path}: no object '{key}'") from exc

        def names():
            key = f"{prefix}/Hist1D"
            return hist1d_names(f[key]) if key in f else []

        offset, true, attr, err = {}, {}, {}, {}
        delays = rows = None
        for mode in MODES:
            h = get(f"OffsetScan{mode}")
            if delays is None:
                edges = h.axis(1).edges()
                delays, rows = delay_rows(len(edges) - 1, float(edges[0]), float(edges[-1]), names)
            # uproot gives [ix, iy] with flows; take each delay's row, put delay first.
            offset[mode] = h.values(flow=True)[:, rows].T.copy()
            err[mode] = h.errors(flow=True)[:, rows].T.copy()
            true[mode] = get(f"HitsTrueNumberScan{mode}").values(flow=True)[:, rows].T.copy()
            attr[mode] = get(f"AttributionScan{mode}").values(flow=True)[:, rows].T.copy()
    return ScanMaps(path, delays, offset, true, attr, err)


def hist1d_names(directory) -> list[str]:
    """The 1D histogram names of an uproot directory (``.../Hist1D``), [] when it has none."""
    try:
        return [key.split(";")[0] for key in directory.keys(recursive=False)]
    except Exception:  # not a directory, or unreadable: the axis decides alone
        return []
