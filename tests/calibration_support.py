"""Emulated BX histograms with known delays for the calibration tests, benchmark and the
closure example: hits drawn here, histograms from the CBC emulator plugin (``compat``
model, the default, bit-identical to the deployed analyzer).

The hit distributions are chosen for calibration studies: a Landau-like (Moyal) charge
around 22k electrons and a 1.2 ns arrival-time spread, with a 15000-electron threshold so
that the sampled BX histogram changes with the delay everywhere in [5, 45] ns. (At the
usual ~5800 electrons most hits fire in two BXs over a ~10 ns plateau where no method can
tell delays apart; see docs/howto/calibration.md.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from timecal_script_cbcsim.detection import emulate

from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import BXHistograms, scan_delays
from timecal_analysis.evaluators import HistogramStack

THRESHOLD = 15000.0


def make_hits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(charge, toa) float32: Moyal charges (-ln Z^2 for normal Z) and Gaussian arrival times."""
    rng = np.random.default_rng(seed)
    charge = 22000.0 + 2500.0 * -np.log(rng.standard_normal(n) ** 2)
    toa = rng.normal(0.0, 1.2, n)
    return charge.astype(np.float32), toa.astype(np.float32)


def histograms(charge, toa, delays, threshold: float = THRESHOLD) -> BXHistograms:
    return emulate(charge, toa, threshold, np.asarray(delays, dtype=np.float64))


def stack(charge, toa, delays, threshold: float = THRESHOLD, mode: str = "Sampled") -> HistogramStack:
    """What :func:`timecal_analysis.evaluators.read_stack` would read from the file."""
    hists = histograms(charge, toa, delays, threshold)
    counts = getattr(hists, mode.lower())[:, 1:-1].astype(np.float64)
    attribution = getattr(hists, f"attribution_{mode.lower()}")[:, 1:].astype(np.float64)
    return HistogramStack(np.asarray(delays, dtype=np.float64), counts, np.sqrt(counts),
                          np.full(len(counts), float(len(charge))), attribution)


def write_file(path: Path, charge, toa, delays, params: dict | None = None) -> Path:
    """A harvested file of these hits (2D maps only, as the calibration reads them)."""
    write_histograms(path, histograms(charge, toa, delays), params, with_1d=False)
    return path


def closure_sample(n_template: int = 1_000_000, n_test: int = 10_000, n_points: int = 100,
                   seed: int = 7, threshold: float = THRESHOLD) -> tuple[HistogramStack, HistogramStack]:
    """Templates at every scanned delay from one set of hits, and ``n_points`` test
    histograms at known delays in [5, 45] ns, each from its own independent hits."""
    templates = stack(*make_hits(n_template, seed), scan_delays(), threshold)
    rng = np.random.default_rng(seed + 1)
    truth = np.round(rng.uniform(5.0, 45.0, n_points), 2)
    counts = np.concatenate([stack(*make_hits(n_test, seed + 2 + i), [d], threshold).counts
                             for i, d in enumerate(truth)])
    return templates, HistogramStack(truth, counts, np.sqrt(counts), np.full(n_points, float(n_test)))
