"""The g++-compiled analyzer header against the Python emulator (script_cbcsim), bit for bit.

Both receive the same selected hits with per-module smearing already applied (each hit
carries its module's smeared threshold and time of arrival, as the analyzer computes them),
so any difference is a difference in the detection logic of physics.md §3-§6. The hit
sample mixes smooth random values with values on the whole/tenth-of-ns grid and charges
placed just around the threshold, where a port is most likely to slip.

If the emulator is not installed these tests fail (they do not skip): the comparison is the
point of the CMSSW-free header.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.cxx_cbc import run_cxx  # tests/ is on sys.path (rootdir, no __init__.py)
from timecal_core.cms.harvested_layout import scan_delays

N_HITS = 10_000
N_MODULES = 400
PEAK = 0.99965971  # max of the compat table at delay 0 (golden pulse_table), for near-threshold charges


def _emulate():
    try:
        from timecal_script_cbcsim.detection import emulate
    except ImportError as exc:  # fail loudly: without the emulator nothing is compared
        pytest.fail(f"the Python emulator timecal_script_cbcsim.detection.emulate is not importable "
                    f"({exc}); install it with .venv/bin/pip install -e plugins/script_cbcsim")
    return emulate


def smeared_hits(threshold: float, threshold_smearing: float, tof_smearing: float, seed: int):
    """Hits with the smearing drawn once per module, applied in the analyzer's float32 way:
    threshold = float(threshold) + float(U(-s, s)), toa = float(toa) + float(U(-s, s))."""
    rng = np.random.default_rng(seed)
    module = rng.integers(0, N_MODULES, N_HITS)
    thr_shift = rng.uniform(-threshold_smearing, threshold_smearing, N_MODULES).astype(np.float32)
    tof_shift = rng.uniform(-tof_smearing, tof_smearing, N_MODULES).astype(np.float32)

    charge = (threshold * (0.6 + rng.gamma(3.0, 0.5, N_HITS))).astype(np.float32)
    toa = rng.normal(0.0, 3.0, N_HITS)
    late = rng.random(N_HITS) < 0.1
    toa[late] = rng.uniform(-30.0, 60.0, late.sum())
    grid = rng.random(N_HITS) < 0.15  # on the whole / tenth-of-ns grid: floor() edges
    toa[grid] = np.round(toa[grid] * rng.choice([1.0, 10.0], grid.sum())) / 10.0
    toa = toa.astype(np.float32)

    thresholds = (np.float32(threshold) + thr_shift[module]).astype(np.float32)
    toa = (toa + tof_shift[module]).astype(np.float32)
    near = rng.random(N_HITS) < 0.05  # peak charge within a few 1e-7 of the threshold
    charge[near] = (thresholds[near] / PEAK * (1 + rng.normal(0, 3e-7, near.sum()))).astype(np.float32)
    return charge, toa, thresholds


def assert_same(cxx: dict, py, n_hits: int) -> None:
    assert py.n_hits == n_hits
    np.testing.assert_array_equal(py.delays, cxx["delays"])
    for key in ("sampled", "latched", "attribution_sampled", "attribution_latched"):
        np.testing.assert_array_equal(np.asarray(getattr(py, key)), cxx[key], err_msg=key)
    assert cxx["sampled"].sum() > 0 and cxx["latched"].sum() > 0  # the sample does fire


def test_compat_full_scan_with_smearing():
    """All 501 accumulated delays, once (C++ ~3 s for 10^4 hits)."""
    emulate = _emulate()
    charge, toa, thr = smeared_hits(5800.0, 400.0, 2.0, seed=1)
    cxx = run_cxx(charge, toa, thr, (0.0, 50.0, 0.1), "compat")
    assert cxx["delays"].size == 501
    assert_same(cxx, emulate(charge, toa, thr, cxx["delays"], "compat"), N_HITS)


@pytest.mark.parametrize("model", ["compat", "exact"])
@pytest.mark.parametrize("threshold, threshold_smearing, tof_smearing", [
    (4000.0, 0.0, 0.0), (5800.0, 300.0, 1.0), (8000.0, 800.0, 3.0),
])
def test_models_and_thresholds_on_a_reduced_delay_grid(model, threshold, threshold_smearing, tof_smearing):
    """Every 20th delay of the scan (26 values, ends included): the exact model's C++ loop
    costs ~80 us per hit and delay."""
    emulate = _emulate()
    charge, toa, thr = smeared_hits(threshold, threshold_smearing, tof_smearing, seed=int(threshold))
    delays = scan_delays()[::20]
    cxx = run_cxx(charge, toa, thr, delays, model)
    assert_same(cxx, emulate(charge, toa, thr, delays, model), N_HITS)


def test_exact_model_at_unusual_delays():
    """Delays off the 0.1 ns grid and past the compat cut (the exact pulse is never cut)."""
    emulate = _emulate()
    charge, toa, thr = smeared_hits(5800.0, 200.0, 1.0, seed=99)
    delays = np.array([0.005, 7.77, 24.999, 33.3333, 49.99, 75.0])
    cxx = run_cxx(charge, toa, thr, delays, "exact")
    assert_same(cxx, emulate(charge, toa, thr, delays, "exact"), N_HITS)
