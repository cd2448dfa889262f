"""The harvested-file contract of physics.md §4 and §6, in one place.

Writers (the CBC emulator, the CMSSW stand-ins of the tests) and readers (observables,
calibration) share these names, binnings and file names so that a file written by one is
read by the other exactly as a CMSSW-harvested file would be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOP_FOLDER = "Ph2TkBXHist"
HARVESTED_PREFIX = "DQMData/Run 1/Ph2TkBXHist/Run summary"
RAW_PREFIX = TOP_FOLDER
PARAMS_KEY = "timecal_params"  # TObjString (JSON) at the top of the file
MODES = ("Sampled", "Latched")
BX_VALUES = np.arange(-5, 6)  # relative bunch crossings
FILL_SHIFT = -1.5  # quirk: bx is filled at bx - 1.5
BX_NBINS, BX_LOW, BX_HIGH = 11, -5.5, 5.5
ATTR_LOW, ATTR_HIGH = -0.5, 4.5


def scan_delays(offset_min: float = 0.0, offset_max: float = 50.0, step: float = 0.1) -> np.ndarray:
    """The delays the analyzer scans (physics.md §4): accumulated doubles, not a linspace.

    The deployed loop appends ``min`` and then, while the current value is <= max, adds the
    step and appends (so the last value may exceed max); 0..50 by 0.1 gives 501 values
    ending at 50.00000000000044. Emulate mode uses a single delay, not this list.
    """
    values = [offset_min]
    current = offset_min
    while current <= offset_max:  # quirk: the last value may overshoot max
        current += step
        values.append(current)
    return np.asarray(values, dtype=np.float64)


def offset_label(delay: float) -> str:
    """C++ ``std::to_string(d)`` (6 decimals) with '.' -> 'p': ``12p300000``."""
    return f"{delay:.6f}".replace(".", "p")


def hist1d_name(mode: str, delay: float) -> str:
    return f"BXHistogram{mode}Offset{offset_label(delay)}"


def output_stem(params: dict[str, Any], delay: float | None = None) -> str:
    """File stem of a PUCalibration-like job (physics.md §6), without ``_raw.root``."""
    stem = (
        f"subdet_{params['subdet']}_N_{params['N']}_pileup_{params['pileup']}"
        f"_pt_{float(params['pt']):.1f}_threshold_{int(params['threshold'])}"
        f"_thresholdsmearing_{float(params['thresholdsmearing']):.1f}"
        f"_tofsmearing_{float(params['tofsmearing']):.1f}"
    )
    head = "BXHistScan_" if delay is None else f"BXHistEmulateDelay_{delay:.2f}_"
    return (head + stem).replace(".", "p")


def raw_name(params: dict[str, Any], delay: float | None = None) -> str:
    return output_stem(params, delay) + "_raw.root"


def harvested_name(params: dict[str, Any], delay: float | None = None) -> str:
    return raw_name(params, delay).replace("raw", "harvested")


# --------------------------------------------------------------------------- containers
@dataclass
class BXHistograms:
    """All histograms of one job, as integer counts *including* under/overflow bins.

    ``sampled``/``latched``: [n_delays, 13] (ROOT bins 0..12 of TH1F(11, -5.5, 5.5));
    ``attribution_*``: [n_delays, 7] (TH1(5, -0.5, 4.5) with flows);
    ``n_hits``: hits selected, the same at every delay (HitsTrueNumberScan fills every bx).
    """

    delays: np.ndarray
    sampled: np.ndarray
    latched: np.ndarray
    attribution_sampled: np.ndarray
    attribution_latched: np.ndarray
    n_hits: int
    offset_step: float = 0.1

    def hits_true(self) -> np.ndarray:
        """HitsTrueNumberScan contents per delay: every hit is filled once at every bx."""
        row = np.zeros(BX_NBINS + 2, dtype=np.int64)
        for bx in BX_VALUES:
            row[_bx_root_bin(bx)] += self.n_hits
        return np.tile(row, (len(self.delays), 1))


def _bx_root_bin(bx: int) -> int:
    v = bx + FILL_SHIFT
    if v < BX_LOW:
        return 0
    if v >= BX_HIGH:
        return BX_NBINS + 1
    return int(np.floor(v - BX_LOW)) + 1


# --------------------------------------------------------------------------- writing
def _axis(name: str, n: int, low: float, high: float):
    from uproot.writing.identify import to_TAxis

    return to_TAxis(name, "", n, low, high)


def _th1f(name: str, title: str, counts: np.ndarray, low: float, high: float, fill_shift: float):
    """TH1F from flow-inclusive counts; fills are assumed at bin centre + fill_shift."""
    from uproot.writing.identify import to_TH1x

    n = len(counts) - 2
    width = (high - low) / n
    centres = low + (np.arange(n) + 0.5) * width + fill_shift
    w = counts[1:-1].astype(np.float64)
    return to_TH1x(
        name, title, counts.astype(np.float32), float(counts.sum()), w.sum(), w.sum(),
        float((w * centres).sum()), float((w * centres**2).sum()),
        counts.astype(np.float64), _axis("xaxis", n, low, high),
    )


def _th2f(name: str, title: str, counts: np.ndarray, xlow: float, xhigh: float, fill_shift: float,
          delays: np.ndarray, step: float):
    """TH2F of x = BX-like value vs y = delay from counts[n_delays, nx + 2] (x flows included)."""
    from uproot.writing.identify import to_TH2x

    nd, nxf = counts.shape
    nx = nxf - 2
    ylow, yhigh = float(delays[0] - step / 2), float(delays[-1] + step / 2)
    full = np.zeros((nd + 2, nxf), dtype=np.float64)  # [iy, ix] incl. y flows (empty)
    full[1:-1, :] = counts
    xc = xlow + (np.arange(nx) + 0.5) * (xhigh - xlow) / nx + fill_shift
    w = counts[:, 1:-1].astype(np.float64)
    sw = w.sum()
    return to_TH2x(
        name, title, full.ravel().astype(np.float32), float(counts.sum()), sw, sw,
        float((w * xc).sum()), float((w * xc**2).sum()),
        float((w * delays[:, None]).sum()), float((w * delays[:, None] ** 2).sum()),
        float((w * xc[None, :] * delays[:, None]).sum()), full.ravel(),
        _axis("xaxis", nx, xlow, xhigh), _axis("yaxis", nd, ylow, yhigh),
    )


def write_histograms(path: Path, hists: BXHistograms, params: dict[str, Any] | None = None,
                     harvested: bool = True, with_1d: bool = True) -> None:
    """Write the analyzer's histograms in the raw (``Ph2TkBXHist/...``) or harvested
    (``DQMData/Run 1/Ph2TkBXHist/Run summary/...``) layout, plus the parameters."""
    import uproot

    prefix = HARVESTED_PREFIX if harvested else RAW_PREFIX
    step = hists.offset_step
    hits_true = hists.hits_true()
    with uproot.recreate(path) as f:
        for mode in MODES:
            counts = getattr(hists, mode.lower())
            attr = getattr(hists, f"attribution_{mode.lower()}")
            f[f"{prefix}/Hist2D/OffsetScan{mode}"] = _th2f(
                f"OffsetScan{mode}", f"BX vs offset ({mode})", counts, BX_LOW, BX_HIGH, -0.5, hists.delays, step)
            f[f"{prefix}/Hist2D/HitsTrueNumberScan{mode}"] = _th2f(
                f"HitsTrueNumberScan{mode}", f"Hits per BX vs offset ({mode})", hits_true, BX_LOW, BX_HIGH,
                -0.5, hists.delays, step)
            f[f"{prefix}/Hist2D/AttributionScan{mode}"] = _th2f(
                f"AttributionScan{mode}", f"BXs fired per hit vs offset ({mode})", attr, ATTR_LOW, ATTR_HIGH,
                0.0, hists.delays, step)
            if with_1d:
                for i, d in enumerate(hists.delays):
                    name = hist1d_name(mode, d)
                    f[f"{prefix}/Hist1D/{name}"] = _th1f(name, name, counts[i], BX_LOW, BX_HIGH, -0.5)
        if params is not None:
            f[PARAMS_KEY] = json.dumps(params, sort_keys=True)


def embed_parameters(path: Path, params: dict[str, Any]) -> None:
    """Store the parameters inside an existing ROOT file (e.g. one CMSSW wrote)."""
    import uproot

    with uproot.open(path) as f:  # uproot 5.7's update mode cannot test membership in files
        present = PARAMS_KEY in f  # with directories, so look first with a reader
    with uproot.update(path) as f:
        if present:
            del f[PARAMS_KEY]
        f[PARAMS_KEY] = json.dumps(params, sort_keys=True)


def read_parameters(path: Path) -> dict[str, Any] | None:
    import uproot

    with uproot.open(path) as f:
        if PARAMS_KEY not in f:
            return None
        return json.loads(str(f[PARAMS_KEY]))


# --------------------------------------------------------------------------- reading
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

        offset, true, attr, err = {}, {}, {}, {}
        delays = None
        for mode in MODES:
            h = get(f"OffsetScan{mode}")
            # uproot gives [ix, iy] with flows; drop the (empty) y flows, put delay first.
            offset[mode] = h.values(flow=True)[:, 1:-1].T.copy()
            err[mode] = h.errors(flow=True)[:, 1:-1].T.copy()
            if delays is None:
                delays = h.axis(1).centers()
            true[mode] = get(f"HitsTrueNumberScan{mode}").values(flow=True)[:, 1:-1].T.copy()
            attr[mode] = get(f"AttributionScan{mode}").values(flow=True)[:, 1:-1].T.copy()
    return ScanMaps(path, delays, offset, true, attr, err)
