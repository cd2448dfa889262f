"""The CMSSW-free header CBCTimingModel.h, compiled with g++ through a standalone driver.

CMSSW cannot be installed here, so the analyzer's physics lives in a header that compiles
without it; these tests prove that header against the golden vectors of the deployed logic
and against an independent numpy transcription of physics.md §2-§5 (both models).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from helpers.cxx_cbc import run_cxx  # tests/ is on sys.path (rootdir, no __init__.py)

VECTORS = Path(__file__).resolve().parent / "data" / "cbc"
THRESHOLDS = (5800, 8000)

# physics.md §2
TAU, R, THETA, N_TERMS, AMPLITUDE = 16.043703, 99.999857, 40.571650, 2, 1.2459094


@pytest.fixture(scope="module")
def hits():
    data = np.load(VECTORS / "hits_1000.npz")
    return data["charge"], data["toa"]


@pytest.fixture(scope="module", params=THRESHOLDS)
def golden_run(request, hits):
    golden = np.load(VECTORS / f"golden_1000_{request.param}.npz")
    charge, toa = hits
    result = run_cxx(charge, toa, float(golden["threshold"]), (0.0, 50.0, 0.1), "compat", pulse_table=True)
    return golden, result


def test_delay_list_is_the_accumulated_quirk(golden_run):
    golden, result = golden_run
    assert result["delays"].size == 501
    np.testing.assert_array_equal(result["delays"], golden["offsets"])
    assert result["delays"][-1] == 50.00000000000044


@pytest.mark.parametrize("mode", ["sampled", "latched"])
def test_bx_histograms_match_golden_exactly(golden_run, mode):
    golden, result = golden_run
    counts = result[mode]
    np.testing.assert_array_equal(counts[:, 1:-1], golden[mode])
    np.testing.assert_array_equal(counts[:, 0], golden[f"{mode}_underflow"])
    np.testing.assert_array_equal(counts[:, -1], golden[f"{mode}_overflow"])


@pytest.mark.parametrize("mode", ["sampled", "latched"])
def test_attribution_matches_golden_exactly(golden_run, mode):
    golden, result = golden_run
    counts = result[f"attribution_{mode}"]
    key = f"attribution_{mode}"
    np.testing.assert_array_equal(counts[:, 1:-1], golden[key])
    np.testing.assert_array_equal(counts[:, 0], golden[f"{key}_underflow"])
    np.testing.assert_array_equal(counts[:, -1], golden[f"{key}_overflow"])


def test_pulse_table_matches_golden_bitwise(golden_run):
    golden, result = golden_run
    np.testing.assert_array_equal(result["pulse_table"], golden["pulse_table"])


def test_fill_quirk_bins_match_golden(golden_run):
    """The last bin of the BX histograms never fills (fill value bx - 1.5)."""
    golden, result = golden_run
    assert list(golden["fill_bin"]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert result["sampled"][:, 11].sum() == 0 and result["latched"][:, 11].sum() == 0


@pytest.mark.parametrize("bx, root_bin", [(-5, 0), (0, 5), (5, 10)])
def test_fill_value_is_bx_minus_one_and_a_half(bx, root_bin):
    """A hit peaking at the sampling instant of window bx only (25 - t' = 22 ns at delay 0,
    charge 7000 e: 0.9997 q > 5800 there, 0.31 q and 0 in the neighbours) lands in ROOT
    bin bx + 5: bx = -5 in the underflow, bx = 5 in bin 10, bin 11 empty."""
    toa = 3.0 + 25 * bx
    result = run_cxx([7000.0], [toa], 5800.0, [0.0], "compat")
    expected = np.zeros(13, np.int64)
    expected[root_bin] = 1
    np.testing.assert_array_equal(result["sampled"][0], expected)
    np.testing.assert_array_equal(result["attribution_sampled"][0], [0, 0, 1, 0, 0, 0, 0])


def test_per_hit_thresholds_equal_scalar_threshold(hits):
    charge, toa = hits
    scalar = run_cxx(charge, toa, 5800.0, [0.0, 12.3, 37.5], "compat")
    per_hit = run_cxx(charge, toa, np.full(charge.size, 5800.0, np.float32), [0.0, 12.3, 37.5], "compat")
    for key in ("sampled", "latched", "attribution_sampled", "attribution_latched"):
        np.testing.assert_array_equal(scalar[key], per_hit[key])


# --------------------------------------------------------------------------- independent model
def _a(n: int, k: int) -> float:
    f = math.factorial
    return (-1) ** k * f(n) * f(n + 2) / (f(n - k) * f(n + 2 - k) * f(k))


def _pulse(x: np.ndarray, delay: float) -> np.ndarray:
    """S(x) of physics.md §2, written from the formula (float64)."""
    xx = np.asarray(x, dtype=np.float64) - delay
    out = np.zeros_like(xx)
    pos = xx >= 0
    z = xx[pos]
    series = np.zeros_like(z)
    for i in range(N_TERMS):
        angular = sum(math.cos(THETA) ** (i - j) * math.sin(THETA) ** j for j in range(i + 1))
        temporal = sum(_a(i, j) * z ** (i - j) * TAU**j for j in range(i + 1))
        series += R**i / (TAU ** (2 * i) * math.factorial(i + 2)) * angular * temporal
    out[pos] = AMPLITUDE * np.exp(-z / TAU) * (z / TAU) ** 2 * series
    return out


def _height(x: np.ndarray, delay: float, model: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if model == "compat":
        table = _pulse(np.arange(100.0), delay)
        inside = (x > 0) & (x < 100)
        out = np.zeros_like(x)
        out[inside] = table[np.floor(x[inside]).astype(int)]
        return out
    return np.where(x > 0, _pulse(np.where(x > 0, x, 0.0), delay), 0.0)


def _reference(charge, toa, threshold, delays, model):
    """Numpy transcription of physics.md §5-§6, vectorised over hits."""
    charge = charge.astype(np.float32)
    q = charge.astype(np.float64)
    thr = threshold.astype(np.float32).astype(np.float64)
    instants = [np.float32(2.7)]
    while instants[-1] + np.float32(1.0) <= np.float32(25.0):
        instants.append(np.float32(instants[-1] + np.float32(1.0)))
    assert len(instants) == 23
    out = {k: np.zeros((len(delays), 13 if k in ("sampled", "latched") else 7), np.int64)
           for k in ("sampled", "latched", "attribution_sampled", "attribution_latched")}
    for d, delay in enumerate(delays):
        n_s = np.zeros(charge.size, int)
        n_l = np.zeros(charge.size, int)
        for bx in range(-5, 6):
            tp = (toa.astype(np.float32) - np.float32(bx * 25)).astype(np.float32)
            fired_s = _height(25.0 - tp.astype(np.float64), delay, model) * q > thr
            above = [(_height((-tp + t).astype(np.float32), delay, model) * q > thr) for t in instants]
            fired_l = np.zeros(charge.size, bool)
            for j in range(1, len(above)):
                fired_l |= above[j] & ~above[j - 1]
            root_bin = bx + 5  # v = bx - 1.5 on TH1F(11, -5.5, 5.5): bin (bx + 5), 0 = underflow
            out["sampled"][d, root_bin] += fired_s.sum()
            out["latched"][d, root_bin] += fired_l.sum()
            n_s += fired_s
            n_l += fired_l
        for key, n in (("attribution_sampled", n_s), ("attribution_latched", n_l)):
            out[key][d] += np.bincount(np.minimum(n, 5) + 1, minlength=7)[:7]
    return out


def test_independent_pulse_formula_matches_golden_table():
    """Anchors the reference below: the formula as written in physics.md gives the table."""
    golden = np.load(VECTORS / "golden_1000_5800.npz")
    for d in (0, 123, 500):
        np.testing.assert_allclose(_pulse(np.arange(100.0), golden["offsets"][d]), golden["pulse_table"][d],
                                   rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("model", ["compat", "exact"])
def test_header_matches_independent_reference(model):
    rng = np.random.default_rng(7)
    n = 1500
    charge = rng.gamma(4.0, 5000.0, n).astype(np.float32)
    toa = rng.normal(0.0, 4.0, n).astype(np.float32)
    threshold = rng.uniform(4500, 9000, n).astype(np.float32)
    delays = [0.0, 3.3, 11.7, 25.0, 38.96, 49.99]
    got = run_cxx(charge, toa, threshold, delays, model)
    want = _reference(charge, toa, threshold, delays, model)
    for key, expected in want.items():
        np.testing.assert_array_equal(got[key], expected, err_msg=f"{model} {key}")


def test_exact_model_differs_from_compat_where_the_spec_says():
    """exact has no whole-ns staircase: a charge/threshold pair that the staircase puts just
    below threshold in compat can fire in exact, so the histograms must not be identical."""
    rng = np.random.default_rng(11)
    charge = rng.gamma(4.0, 5000.0, 3000).astype(np.float32)
    toa = rng.normal(0.0, 4.0, 3000).astype(np.float32)
    compat = run_cxx(charge, toa, 5800.0, [0.0, 20.0], "compat")
    exact = run_cxx(charge, toa, 5800.0, [0.0, 20.0], "exact")
    assert not np.array_equal(compat["sampled"], exact["sampled"])
    assert compat["sampled"].sum() == pytest.approx(exact["sampled"].sum(), rel=0.05)


def test_bad_model_is_rejected():
    with pytest.raises(ValueError, match="compat"):
        run_cxx([1.0], [0.0], 5800.0, [0.0], "fast")


# --------------------------------------------------------------------------- selection (§1)
# physics.md §1: subdet -> (r_min, r_max, |z|_min, |z|_max), cm, bounds inclusive.
WINDOWS = {"ALL": (0, 120, 0, 280), "BLL": (20, 26, 0, 6.5), "BLH": (22, 30, 116, 122),
           "BHL": (108, 114, 0, 20), "BHH": (108, 114, 80, 120), "ELL": (22, 28, 128, 131),
           "ELH": (32, 50.5, 260, 270), "EHL": (93, 112, 128, 131), "EHH": (92, 112, 262, 268)}

SELECTION_PROGRAM = r"""
#include "CBCTimingModel.h"
#include <cstdio>
#include <iostream>
#include <string>
int main() {
  std::string subdet;
  double ptCut, r, absZ;
  int bx, track;
  float pt, dz;
  while (std::cin >> subdet >> ptCut >> bx >> track >> pt >> dz >> r >> absZ) {
    try {
      const cbc_timing::HitSelection selection{ptCut, cbc_timing::regionWindow(subdet)};
      std::printf("%d\n", selection.accepts(bx, track, pt, dz, r, absZ) ? 1 : 0);
    } catch (const std::invalid_argument&) {
      std::printf("error\n");
    }
  }
}
"""


def test_hit_selection_follows_physics_section_1(tmp_path):
    import shutil
    import subprocess

    from helpers.cxx_cbc import HEADER

    source = tmp_path / "selection.cc"
    source.write_text(SELECTION_PROGRAM)
    binary = tmp_path / "selection"
    subprocess.run([shutil.which("g++"), "-std=c++17", "-I", str(HEADER.parent), "-o", str(binary), str(source)],
                   check=True)
    cases, expected = [], []
    for subdet, (r0, r1, z0, z1) in WINDOWS.items():
        for r, z, inside in [(r0, z0, True), (r1, z1, True), ((r0 + r1) / 2, (z0 + z1) / 2, True),
                             (r1 + 0.01, z0, False), (r0, z1 + 0.01, False), (r0 - 0.01, z1, False)]:
            cases.append(f"{subdet} 2.0 0 7 2.0 0.3 {r} {z}")  # pt == cut is kept
            expected.append(str(int(inside and r >= 0)))
    good = "BHL 2.0 0 7 {pt} {dz} 110 10"
    for line, fires in [(good.format(pt=1.99, dz=0.3), 0), (good.format(pt=2.0, dz=-0.3), 1),
                        (good.format(pt=5.0, dz=0.01), 0), (good.format(pt=5.0, dz=-0.0101), 1),
                        ("BHL 2.0 1 7 5.0 0.3 110 10", 0), ("BHL 2.0 0 0 5.0 0.3 110 10", 0),
                        ("BHL 2.0 0 -3 5.0 0.3 110 10", 0), ("XYZ 2.0 0 7 5.0 0.3 110 10", "error")]:
        cases.append(line)
        expected.append(str(fires))
    out = subprocess.run([str(binary)], input="\n".join(cases) + "\n", capture_output=True, text=True, check=True)
    assert out.stdout.split() == expected


# --------------------------------------------------------------------------- the wrapper
def test_run_cxx_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        run_cxx([1.0, 2.0], [0.0], 5800.0, [0.0])
    with pytest.raises(ValueError, match="threshold has 3 values for 2 hits"):
        run_cxx([1.0, 2.0], [0.0, 1.0], [1.0, 2.0, 3.0], [0.0])
    with pytest.raises(ValueError, match="min, max, step"):
        run_cxx([1.0], [0.0], 5800.0, (0.0, 50.0))
    with pytest.raises(RuntimeError, match="OffsetStep"):
        run_cxx([1.0], [0.0], 5800.0, (0.0, 50.0, 0.0))


def test_binaries_are_cached_per_flags(tmp_path, monkeypatch):
    from helpers import cxx_cbc

    monkeypatch.setenv("TIMECAL_CXX_CACHE", str(tmp_path))
    first = cxx_cbc.build("-O1")
    stamp = first.stat().st_mtime_ns
    assert cxx_cbc.build("-O1") == first and first.stat().st_mtime_ns == stamp  # reused
    assert cxx_cbc.build("-O0") != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, cxx_cbc.build("-O0").name])
    with pytest.raises(RuntimeError, match="compiling"):
        cxx_cbc.build("-no-such-flag")
    assert len(list(tmp_path.iterdir())) == 2  # no half-written binary left behind


def test_driver_reads_hits_from_stdin(hits, tmp_path):
    import subprocess

    from helpers.cxx_cbc import build

    charge, toa = hits
    threshold = np.full(charge.size, 5800.0, np.float32)
    payload = charge.tobytes() + toa.tobytes() + threshold.tobytes()
    out = tmp_path / "counts.bin"
    proc = subprocess.run([str(build()), "--model", "compat", "--hits", str(charge.size), "--input", "-",
                           "--range", "0", "50", "0.1", "--out", str(out)],
                          input=payload, capture_output=True, check=True)
    assert b"compute_seconds" in proc.stdout
    golden = np.load(VECTORS / "golden_1000_5800.npz")
    sampled = np.fromfile(out, dtype=np.int64)[:501 * 13].reshape(501, 13)
    np.testing.assert_array_equal(sampled[:, 1:-1], golden["sampled"])
    truncated = subprocess.run([str(build()), "--hits", str(charge.size + 1), "--input", "-", "--range", "0", "1", "1",
                                "--out", str(out)], input=payload, capture_output=True)
    assert truncated.returncode == 2 and b"short read" in truncated.stderr
