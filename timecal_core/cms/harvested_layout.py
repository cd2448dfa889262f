"""The harvested-file contract of physics.md §4 and §6, in one place.

Writers (the CBC emulator, the CMSSW stand-ins of the tests) and readers (observables,
calibration) share these names, binnings and file names so that a file written by one is
read by the other exactly as a CMSSW-harvested file would be. Writing lives in
:mod:`~timecal_core.cms.fast_root`, reading in :mod:`~timecal_core.cms.readers`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np



TOP_FOLDER = "Ph2TkBXHist"
HARVESTED_PREFIX = "DQMData/Run 1/Ph2TkBXHist/Run summary"
RAW_PREFIX = TOP_FOLDER
PARAMS_KEY = "timecal_params"  # TObjString (JSON) at the top of the file
# The record the core stores as PARAMS_KEY reaches a task's steps in the environment variable
# TASK_PARAMETERS_ENV (the contract's): a step that writes its ROOT file itself may store it,
# and the core then finds it in place instead of rewriting the file (root_records).
MODES = ("Sampled", "Latched")
#: Output layouts of a harvested file (BXRun --layout, timerc [production] layout, recorded
#: in params.json). Both hold the six 2D maps, the Info folder and the parameters, which is
#: all plotScan, runCalibration and the aggregators read (physics.md §6-§8: every delay's
#: BX histogram is a row of OffsetScan); "full" also holds the 1,002 one-dimensional
#: histograms the DQM harvest writes, each a copy of one map row, which scripts written
#: for the DQM files read. The compact writer of CMSSW files is :mod:`.compact`.
FULL, COMPACT = "full", "compact"
LAYOUTS = {FULL: "the DQM harvest as the analyzer writes it: the 2D maps and a 1D histogram per "
                 "delay and mode (~570 kB per emulator task)",
           COMPACT: "the 2D maps, Info and the parameters, without the 1D histograms the maps "
                    "repeat (~50 kB per emulator task)"}
HIST1D = "Hist1D"
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


def _find_fix_bin(values: np.ndarray, nbins: int, low: float, high: float) -> np.ndarray:
    """TAxis::FindFixBin: 0 underflow, 1..nbins, nbins + 1 overflow."""
    inside = np.floor(nbins * (values - low) / (high - low)).astype(np.int64) + 1
    return np.where(values < low, 0, np.where(values >= high, nbins + 1, inside))


@functools.lru_cache(maxsize=256)  # every file of a production has the same axis
def _deployed_axis_delays(nbins: int, low: float, high: float) -> tuple[float, ...] | None:
    """The delays behind a delay axis written by the deployed analyzer, when they are not its
    bin centres: [OffsetMin - step/2, OffsetMax + step/2] with one bin per accumulated delay
    spans one step too little when the list overshoots OffsetMax by a whole step (0/50/0.5:
    102 delays on [-0.25, 50.25]). None when the axis cannot be such a one."""
    if nbins < 2:
        return None
    step = (high - low) / (nbins - 1)
    delays = scan_delays(low + step / 2, high - step / 2, step)
    return tuple(delays) if len(delays) == nbins else None


def delay_rows(nbins: int, low: float, high: float,
               names: Callable[[], Any] | None = None) -> tuple[np.ndarray, np.ndarray | slice]:
    """The delays of a 2D map's delay axis (``nbins`` bins on [low, high]) and the row of
    each, as an index into the axis *with* its flows: ``slice(1, nbins + 1)`` (a view) when
    the rows are the bins in order, else the array of rows (1..nbins, or nbins + 1).

    Writers (the Python writer always, the CMSSW analyzer since issue 27) give one bin per
    delay on [first - step/2, last + step/2]: the delays are the bin centres, rows 1..nbins.
    The deployed analyzer used [OffsetMin - step/2, OffsetMax + step/2], the same axis except
    when its accumulated list overshoots OffsetMax by a whole step; its fills then went to the
    bin FindFixBin gives (a neighbour's index from the middle of the scan on, the last delay
    into the overflow), each delay still in a bin of its own. Such an axis is recognised
    (:func:`_deployed_axis_delays`), and the file's 1D histogram names (``names()``:
    ``BXHistogram<mode>Offset<d>``, which every analyzer file has) say which writer it was.
    Without names the axis is taken as the current writers'.
    """
    centres = low + (np.arange(nbins) + 0.5) * (high - low) / nbins
    rows = slice(1, nbins + 1)
    deployed = _deployed_axis_delays(nbins, float(low), float(high))
    if deployed is None or names is None:
        return centres, rows
    labels = {name.rsplit("Offset", 1)[-1] for name in names() or () if "Offset" in name}
    if labels and {offset_label(float(d)) for d in deployed} == labels:
        delays = np.asarray(deployed, dtype=np.float64)
        return delays, _find_fix_bin(delays, nbins, low, high)
    return centres, rows


@functools.lru_cache(maxsize=1 << 16)  # 1,002 names per harvested file, the same every task
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
