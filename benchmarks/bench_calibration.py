"""Delay scan speed: the vectorised coarse + fine scan of timecal against the seed's way
(a Python loop over candidate delays: interpolate one template, compute its score), on the
same test histograms in the same run. Goal (issue 7): at least 20x faster. The loop computes
what each evaluator computes (issue 15), so "same results: True" means the speed-up
compares one computation done two ways.

Then what the calibrated ±1σ (issue 27: Feldman-Cousins levels from pseudo-histograms,
timecal_analysis.intervals) costs on top: computing the levels the tests need (once per
evaluator, templates and hit count; runCalibration caches them), for one test and for all,
and the scan with them.

    .venv/bin/python benchmarks/bench_calibration.py [--quick] [--tests N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from calibration_support import make_hits, stack  # noqa: E402
from timecal_analysis.calibration import scan_delay  # noqa: E402
from timecal_analysis.intervals import Levels, LevelsByTest, PatternModel  # noqa: E402
from timecal_analysis.evaluators import (BinomialEvaluator, HistogramStack,  # noqa: E402
                                         LinearInterpolationEvaluator, MeanEvaluator)
from timecal_core.cms.harvested_layout import scan_delays  # noqa: E402

CENTRES = np.arange(-5.0, 6.0)


def _interpolate(templates: HistogramStack, values: np.ndarray, d: float) -> np.ndarray:
    hi = min(max(int(np.searchsorted(templates.delays, d, side="right")), 1), len(templates.delays) - 1)
    lo = hi - 1
    w = min(max((d - templates.delays[lo]) / (templates.delays[hi] - templates.delays[lo]), 0.0), 1.0)
    return (1 - w) * values[lo] + w * values[hi]


def loop_deviance(templates, counts, d):
    t = _interpolate(templates, templates.counts, d)
    f = t / t.sum() * counts.sum()
    return 2.0 * np.sum(f - counts + counts * np.log((counts + 1e-9) / (f + 1e-9)))


def _mean(w):
    """ROOT's GetMean + 0.5 and GetMeanError, RMS / sqrt(N_eff), with errors sqrt(w)."""
    total = w.sum()
    mean = (w @ CENTRES) / total
    rms = math.sqrt(np.sum(w * (CENTRES - mean) ** 2) / total)
    n_eff = total**2 / np.sum(w)  # sum of errors^2 = sum w for Poisson errors
    return mean + 0.5, rms / math.sqrt(n_eff)


def make_loop_mean(templates):
    """The template means are computed once, as any sensible loop would."""
    means = np.array([_mean(w) for w in templates.counts])

    def loop_mean(templates, counts, d):
        m, s = _interpolate(templates, means[:, 0], d), _interpolate(templates, means[:, 1], d)
        mt, st = _mean(counts)
        return abs(mt - m) / math.sqrt(st**2 + s**2)
    return loop_mean


def make_loop_binomial(templates, hits):
    """Per bin, k fired of the test's N hits against p(d) = fired / hits of the templates."""
    probability = templates.counts / templates.hits[:, None]
    floor = 0.5 / templates.hits.min()

    def loop_binomial(templates, counts, d):
        p = _interpolate(templates, probability, d)
        total = 0.0
        for k, pb in zip(counts, p):
            pb = min(max(pb, floor), 1.0 - floor)
            if k > 0:
                total += k * math.log(k / (hits * pb))
            if hits - k > 0:
                total += (hits - k) * math.log((hits - k) / (hits * (1.0 - pb)))
        return 2.0 * total
    return loop_binomial


def loop_scan(score, templates, counts):
    """The seed's shape: one template and one score per candidate delay."""
    coarse = np.arange(50.0)
    cs = np.array([score(templates, counts, d) for d in coarse])
    cs -= cs.min()
    inside = np.flatnonzero(cs <= 1)
    lo, hi = max(coarse[inside[0]] - 1, 0.0), min(coarse[inside[-1]] + 1, 49.99)
    fine = np.arange(round(lo * 100), round(hi * 100) + 1) / 100
    fs = np.array([score(templates, counts, d) for d in fine])
    fs -= fs.min()
    best = int(fs.argmin())
    left = next((j for j in range(best, -1, -1) if fs[j] > 1), None)
    right = next((j for j in range(best, len(fs)) if fs[j] > 1), None)
    lower = fine[0] if left is None else fine[left] + (fs[left] - 1) / (fs[left] - fs[left + 1]) * 0.01
    upper = fine[-1] if right is None else fine[right] - (fs[right] - 1) / (fs[right] - fs[right - 1]) * 0.01
    return fine[best], lower, upper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 tests instead of 100")
    parser.add_argument("--tests", type=int, default=None)
    args = parser.parse_args()
    n_tests = args.tests or (10 if args.quick else 100)

    templates = stack(*make_hits(200_000, 1), scan_delays())
    rng = np.random.default_rng(2)
    truth = np.round(rng.uniform(5, 45, n_tests), 2)
    counts = np.concatenate([stack(*make_hits(10_000, 10 + i), [d]).counts for i, d in enumerate(truth)])
    tests = HistogramStack(truth, counts, np.sqrt(counts), np.full(n_tests, 10_000.0))

    print(f"delay scan: {n_tests} test histograms, {len(templates.delays)} templates, "
          f"coarse 1 ns + fine 0.01 ns")
    for name, evaluator_class, loop_score in (("LinearInterpolation", LinearInterpolationEvaluator, loop_deviance),
                                              ("Mean", MeanEvaluator, make_loop_mean(templates)),
                                              ("Binomial", BinomialEvaluator, make_loop_binomial(templates, 10_000.0))):
        start = time.perf_counter()
        evaluator = evaluator_class(templates)
        scan = scan_delay(evaluator, tests)
        vectorised = time.perf_counter() - start

        start = time.perf_counter()
        reference = [loop_scan(loop_score, templates, tests.counts[i]) for i in range(n_tests)]
        loop = time.perf_counter() - start
        reference = np.array(reference)
        agree = np.allclose(reference[:, 0], scan.estimate, atol=1e-9) and \
            np.allclose(reference[:, 1:], np.c_[scan.lower, scan.upper], atol=1e-6)
        print(f"  {name:<20} vectorised {vectorised * 1e3:9.1f} ms   loop over delays {loop * 1e3:9.1f} ms"
              f"   speed-up {loop / vectorised:6.1f}x (goal >= 20x)   same results: {agree}")
    model = PatternModel.from_templates(templates)
    print("calibrated ±1σ (Feldman-Cousins levels, computed once, then cached):")
    for name, evaluator_class in (("LinearInterpolation", LinearInterpolationEvaluator), ("Mean", MeanEvaluator),
                                  ("Binomial", BinomialEvaluator)):
        evaluator = evaluator_class(templates)
        start = time.perf_counter()
        single = Levels(evaluator, model, 10_000)
        scan_delay(evaluator, tests.select([0]), levels=LevelsByTest([single]))
        one = time.perf_counter() - start
        levels = Levels(evaluator, model, 10_000)
        start = time.perf_counter()
        scan_delay(evaluator, tests, levels=LevelsByTest([levels] * n_tests))
        every = time.perf_counter() - start
        start = time.perf_counter()
        scan_delay(evaluator, tests, levels=LevelsByTest([levels] * n_tests))
        cached = time.perf_counter() - start
        print(f"  {name:<20} levels for 1 test {one:6.2f} s ({len(single.known)} delays)   for {n_tests} tests "
              f"{every:6.2f} s ({len(levels.known)} delays)   scan with cached levels {cached * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
