"""cbcsim's detection (plugins/script_cbcsim): the golden vectors of the deployed analyzer,
the fast paths against the literal per-delay reference, and both against the g++-compiled
header (cmssw/.../CBCTimingModel.h) on smeared random hits."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from timecal_core.cms.harvested_layout import scan_delays
from timecal_script_cbcsim import detection
from timecal_script_cbcsim.detection import emulate, reference_emulate
from timecal_script_cbcsim.pulse import DEFAULT_SHAPE, compat_table, pulse_height

VECTORS = Path(__file__).resolve().parent / "data" / "cbc"
HISTS = ("sampled", "latched", "attribution_sampled", "attribution_latched")


def assert_same(a, b):
    for name in HISTS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_hits == b.n_hits


@pytest.fixture(scope="module")
def golden_hits():
    return dict(np.load(VECTORS / "hits_1000.npz"))


def load_golden(threshold):
    return dict(np.load(VECTORS / f"golden_1000_{threshold}.npz"))


def test_compat_table_equals_the_deployed_table():
    golden = load_golden(5800)
    np.testing.assert_array_equal(compat_table(golden["offsets"]), golden["pulse_table"])


def test_pulse_shape_against_the_formula_of_physics_section_2():
    """An independent transcription of the formula (sums written out, math module)."""
    tau, r, theta, n, amp = 16.043703, 99.999857, 40.571650, 2, 1.2459094
    def a(N, k):
        f = math.factorial
        return (-1) ** k * f(N) * f(N + 2) / (f(N - k) * f(N + 2 - k) * f(k))
    def s(xx):
        total = sum(r ** i / (tau ** (2 * i) * math.factorial(i + 2))
                    * sum(math.cos(theta) ** (i - j) * math.sin(theta) ** j for j in range(i + 1))
                    * sum(a(i, j) * xx ** (i - j) * tau ** j for j in range(i + 1)) for i in range(n))
        return amp * math.exp(-xx / tau) * (xx / tau) ** 2 * total
    xx = np.linspace(0.01, 120, 777)
    np.testing.assert_allclose(DEFAULT_SHAPE(xx), [s(v) for v in xx], rtol=1e-12, atol=1e-15)
    assert DEFAULT_SHAPE(-0.5) == 0.0
    peak = xx[np.argmax(DEFAULT_SHAPE(xx))]
    assert 20 < peak < 24 and DEFAULT_SHAPE(peak) == pytest.approx(0.9997, abs=1e-3)


def test_pulse_height_models_differ_as_physics_section_3_says():
    x = np.array([0.0, 0.5, 22.7, 99.9, 100.0, 130.0])
    compat = pulse_height(x, 0.0, "compat")
    exact = pulse_height(x, 0.0, "exact")
    assert compat[0] == 0.0 and compat[4] == 0.0 and compat[5] == 0.0  # x = 0 and the 100 ns cut
    assert compat[2] == DEFAULT_SHAPE(22.0)  # whole ns
    assert exact[2] == DEFAULT_SHAPE(22.7) and exact[5] != 0.0


@pytest.mark.parametrize("threshold", [5800, 8000])
@pytest.mark.parametrize("implementation", [emulate, reference_emulate])
def test_compat_reproduces_the_golden_vectors(golden_hits, threshold, implementation):
    golden = load_golden(threshold)
    result = implementation(golden_hits["charge"], golden_hits["toa"], golden["threshold"], golden["offsets"])
    for mode in ("sampled", "latched"):
        counts = getattr(result, mode)
        np.testing.assert_array_equal(counts[:, 1:12], golden[mode])
        np.testing.assert_array_equal(counts[:, 0], golden[f"{mode}_underflow"])
        np.testing.assert_array_equal(counts[:, 12], golden[f"{mode}_overflow"])
        attr = getattr(result, f"attribution_{mode}")
        np.testing.assert_array_equal(attr[:, 1:6], golden[f"attribution_{mode}"])
        np.testing.assert_array_equal(attr[:, 0], golden[f"attribution_{mode}_underflow"])
        np.testing.assert_array_equal(attr[:, 6], golden[f"attribution_{mode}_overflow"])


def test_reference_reproduces_golden_masks_hit_by_hit(golden_hits):
    """The per-hit debug masks: the reference is a faithful port, not a lucky total."""
    golden = load_golden(5800)
    for d in (0, 137, 420):
        for h in (3, 500, 999):
            hits = slice(h, h + 1)
            result = reference_emulate(golden_hits["charge"][hits], golden_hits["toa"][hits], 5800.0,
                                       golden["offsets"][d:d + 1])
            bins = detection.BX_BIN
            for mode in ("sampled", "latched"):
                fired = getattr(result, mode)[0][bins] > 0
                mask = sum(1 << int(bx + 5) for bx, f in zip(detection.BX, fired) if f)
                assert mask == golden[f"mask_{mode}"][d, h]


def random_hits(n, seed, near_integer=0.2):
    """Hits with wide toa tails, some toa a hair from whole ns (float32 rounding edges)."""
    rng = np.random.default_rng(seed)
    charge = rng.gamma(4.0, 5000.0, n).astype(np.float32)
    toa = np.where(rng.random(n) < 0.8, rng.normal(0, 2, n), rng.uniform(-40, 70, n))
    edge = rng.random(n) < near_integer
    toa = np.where(edge, np.round(toa) + rng.choice([-1e-6, 0.0, 1e-6, 0.3, -0.7, 0.2999999], n), toa)
    return charge, toa.astype(np.float32), rng


@pytest.mark.parametrize("model", ["compat", "exact"])
@pytest.mark.parametrize("case", ["scalar", "smeared", "range", "single"])
def test_fast_path_equals_reference(model, case):
    charge, toa, rng = random_hits(600, seed=hash((model, case)) % 1000)
    threshold = {"scalar": 5800.0, "range": 9000.0, "single": 4000.0,
                 "smeared": (5800 + rng.uniform(-2000, 2000, charge.size)).astype(np.float32)}[case]
    delays = {"scalar": scan_delays(), "smeared": scan_delays(0, 50, 0.35), "range": scan_delays(10, 20, 0.25),
              "single": np.array([rng.integers(0, 5000) / 100])}[case]
    if model == "exact" and case == "scalar":
        delays = delays[::4]
    assert_same(emulate(charge, toa, threshold, delays, model), reference_emulate(charge, toa, threshold, delays, model))


@pytest.mark.parametrize("model", ["compat", "exact"])
def test_fallbacks_stay_exact(model):
    """Hits the fast paths hand to the reference (threshold <= 0, zero charge, tiny chunks,
    unsorted delays) still give the literal result."""
    charge, toa, rng = random_hits(300, seed=7)
    charge[:5] = 0.0
    threshold = np.full(charge.size, 5800.0, np.float32)
    threshold[5:10] = 0.0
    threshold[10:15] = -100.0
    delays = rng.permutation(scan_delays(0, 40, 1.0))
    assert_same(emulate(charge, toa, threshold, delays, model, chunk_size=64),
                reference_emulate(charge, toa, threshold, delays, model))


def test_rank_order_violations_and_non_unimodal_tables_go_to_the_reference(monkeypatch):
    """The compat fast path's two assumptions, forced to fail: hits whose exact test
    contradicts the z order, and delays whose table is not unimodal, must be recomputed
    literally (the real pulse never triggers these, so they are simulated)."""
    charge, toa, rng = random_hits(400, seed=21)
    threshold = (5800 + rng.uniform(-1000, 1000, charge.size)).astype(np.float32)
    delays = scan_delays(0, 50, 0.9)
    real_prefix = detection._prefix_lengths
    flagged = []
    def prefix_with_violations(z_sorted, q_sorted, thr_sorted, table):
        p, bad = real_prefix(z_sorted, q_sorted, thr_sorted, table)
        if not flagged:
            flagged.append(True)
            return p, np.arange(0, z_sorted.size, 7)
        return p, bad
    monkeypatch.setattr(detection, "_prefix_lengths", prefix_with_violations)
    monkeypatch.setattr(detection, "_unimodal_rows", lambda table: np.arange(table.shape[0]) % 5 != 0)
    assert_same(emulate(charge, toa, threshold, delays), reference_emulate(charge, toa, threshold, delays))
    assert flagged


def test_exact_sees_the_pulse_beyond_the_100ns_cut():
    """At delay 50 a hit at t = -0.5 ns sampled in bx = +3 sits at x = 100.5 ns: compat cuts
    the pulse there (h = 0), exact evaluates S(50.5) > 0 (physics.md §3)."""
    charge, toa, delay = np.float32(60000.0), np.float32(-0.5), 50.0
    assert DEFAULT_SHAPE(100.5 - delay) * float(charge) > 5800.0
    bx3 = detection.BX_BIN[list(detection.BX).index(3)]
    compat = emulate([charge], [toa], 5800.0, [delay], "compat")
    exact = emulate([charge], [toa], 5800.0, [delay], "exact")
    assert compat.sampled[0, bx3] == 0 and exact.sampled[0, bx3] == 1
    assert_same(exact, reference_emulate([charge], [toa], 5800.0, [delay], "exact"))


def test_chunking_does_not_change_the_result():
    charge, toa, _ = random_hits(2000, seed=5)
    delays = scan_delays(0, 50, 0.5)
    assert_same(emulate(charge, toa, 6000.0, delays, chunk_size=333), emulate(charge, toa, 6000.0, delays))


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to compile the C++ header")
@pytest.mark.parametrize("model", ["compat", "exact"])
def test_matches_the_compiled_header_on_smeared_hits(model):
    """10,000 hits, thresholds smeared per module (as cbcsim applies them), three levels."""
    from helpers.cxx_cbc import run_cxx

    from timecal_script_cbcsim.smearing import ModuleSmearing

    rng = np.random.default_rng(42)
    n = 10_000
    charge = rng.gamma(4.0, 5000.0, n).astype(np.float32)
    toa = rng.normal(0, 3, n).astype(np.float32)
    modules = rng.integers(0, 800, n).astype(np.uint32)
    smearing = ModuleSmearing.draw(modules, 700.0, 1.5, seed=9)
    for threshold in (5800.0, 4500.0, 9000.0):
        full = model == "compat" and threshold == 5800.0  # the 501 accumulated delays once
        delay_range = (0.0, 50.0, 0.1) if full else (0.0, 50.0, 1.7)
        smeared_toa, thr = smearing.apply(modules, toa, threshold)
        cxx = run_cxx(charge, smeared_toa, thr, delay_range, model=model)
        ours = emulate(charge, smeared_toa, thr, cxx["delays"], model)
        for name in HISTS:
            np.testing.assert_array_equal(getattr(ours, name), cxx[name], err_msg=f"{name} at {threshold}")
