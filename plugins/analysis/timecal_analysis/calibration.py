"""The delay scan of physics.md §8: from an evaluator's score curve to a delay with
asymmetric ±1σ errors, for many test histograms at once.

A coarse pass (1 ns over [0, 50)) finds the region where the score is within the interval's
level of its minimum; that region, widened by one coarse step each side, is rescanned in
0.01 ns steps. The level is 1 (physics.md §8) unless ``levels`` give it per test and delay
(the Feldman–Cousins levels of :mod:`.intervals`, which make the interval cover 68.3 %).
Every pass is one call of the evaluator's vectorised ``score`` over all tests and all
candidate delays (the fine pass over the flattened (test, delay) pairs of every test's own
region), so the cost is a few array operations rather than a Python loop over delays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluators import HistogramStack

SCAN_LOW, SCAN_HIGH = 0.0, 50.0
COARSE_STEP, FINE_STEP = 1.0, 0.01
#: Bound on (test, delay) pairs x bins per score call, so thousands of tests fit in memory.
MAX_CHUNK_ELEMENTS = 4_000_000
#: A ±1σ interval wider than this (ns) means the BX histogram barely changes with the delay
#: there: the test sits on a plateau (at ~5800 e most hits fire in the same two BXs over
#: ~10 ns), and the estimate is any point of it rather than a measurement.
PLATEAU_WIDTH = 2.0
#: Fewer tests with a known delay than this: bias, resolution and coverage are "n/a".
MIN_TESTS_FOR_SUMMARY = 3
#: Scores within this of the minimum are the same: the histogram is the one the templates
#: give at every such delay (identical template histograms at distinct delays).
DEGENERATE_TOLERANCE = 1e-9
#: A range of equal scores narrower than this (ns) is not reported as degenerate: templates
#: of 10^6 hits can agree exactly over a few hundredths of a ns on a plateau, which the
#: interval already says (it is not narrower than the template step).
DEGENERATE_MIN_WIDTH = 0.1


@dataclass
class DelayScan:
    """Results for n tests. Fine grids are padded with NaN past each test's own region."""

    estimate: np.ndarray  # [n] delay of the fine minimum
    lower: np.ndarray  # [n] where the fine curve crosses 1 below the estimate
    upper: np.ndarray  # [n] ... above it
    at_edge: np.ndarray  # [n] bool: the ±1σ interval reaches the scan edge (no crossing there)
    degenerate: np.ndarray  # [n] bool: the minimum is not a point but a range (see flat_*)
    flat_lower: np.ndarray  # [n] the range of delays whose score equals the minimum
    flat_upper: np.ndarray  # [n]
    coarse_delays: np.ndarray  # [n_coarse]
    coarse_scores: np.ndarray  # [n, n_coarse], minus each row's minimum
    fine_delays: np.ndarray  # [n, n_fine]
    fine_scores: np.ndarray  # [n, n_fine], minus each row's minimum

    @property
    def plateau(self) -> np.ndarray:
        """[n] bool: the interval is wider than PLATEAU_WIDTH (see there)."""
        return (self.upper - self.lower) > PLATEAU_WIDTH

    @property
    def plus(self) -> np.ndarray:
        return self.upper - self.estimate

    @property
    def minus(self) -> np.ndarray:
        return self.estimate - self.lower


def coarse_grid(low: float = SCAN_LOW, high: float = SCAN_HIGH, step: float = COARSE_STEP) -> np.ndarray:
    return low + np.arange(int(np.ceil((high - low) / step - 1e-9))) * step


def fine_region(coarse_delays: np.ndarray, coarse_scores: np.ndarray, step: float, low: float,
                high: float, level=1.0) -> tuple[np.ndarray, np.ndarray]:
    """[first, last] delay of the points within ``level`` of the minimum (a number, or one
    per point), widened by one step and kept inside [low, high]."""
    within = coarse_scores <= level
    first = within.argmax(axis=1)
    last = within.shape[1] - 1 - within[:, ::-1].argmax(axis=1)
    return (np.maximum(coarse_delays[first] - step, low),
            np.minimum(coarse_delays[last] + step, high))


def _cross(d_out, r_out, d_in, r_in):
    """Where the straight line from (d_in, r_in <= 0) to (d_out, r_out > 0) reaches 0 (r: the
    rise minus its level); an infinite outer value (e.g. a Mean error of zero) puts the
    crossing on the inner point."""
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(np.isfinite(r_out), r_out / (r_out - r_in), 1.0)
        return d_out + frac * (d_in - d_out)


def _crossings(delays: np.ndarray, rel: np.ndarray, valid: np.ndarray, excess: np.ndarray):
    """Estimate (minimum of ``rel``) and the interpolated crossings of the level on each side
    of it (``excess`` = rel - level), per row."""
    n, width = rel.shape
    rows = np.arange(n)
    j = np.arange(width)[None, :]
    best = np.where(valid, rel, np.inf).argmin(axis=1)
    above = (excess > DEGENERATE_TOLERANCE) & valid  # equal scores differ by rounding only
    left = np.where(above & (j < best[:, None]), j, -1).max(axis=1)
    right = np.where(above & (j > best[:, None]), j, width).min(axis=1)
    has_left, has_right = left >= 0, right < width
    # Interpolate between the first point above the level and its neighbour inside the interval.
    lo_out, hi_out = np.maximum(left, 0), np.minimum(right, width - 1)
    lower = np.where(has_left, _cross(delays[rows, lo_out], excess[rows, lo_out],
                                      delays[rows, lo_out + 1], excess[rows, lo_out + 1]), delays[rows, 0])
    last_valid = valid.sum(axis=1) - 1
    upper = np.where(has_right, _cross(delays[rows, hi_out], excess[rows, hi_out],
                                       delays[rows, hi_out - 1], excess[rows, hi_out - 1]),
                     delays[rows, last_valid])
    return delays[rows, best], lower, upper, ~(has_left & has_right)


def _flat_range(delays: np.ndarray, rel: np.ndarray, valid: np.ndarray, best: np.ndarray):
    """The contiguous range around each row's minimum where the score equals it."""
    n, width = rel.shape
    rows = np.arange(n)
    j = np.arange(width)[None, :]
    off = (rel > DEGENERATE_TOLERANCE) | ~valid
    left = np.where(off & (j < best[:, None]), j, -1).max(axis=1) + 1
    right = np.where(off & (j > best[:, None]), j, width).min(axis=1) - 1
    lower, upper = delays[rows, left], delays[rows, right]
    return lower, upper, upper - lower >= DEGENERATE_MIN_WIDTH - 1e-9


def scan_delay(evaluator, tests: HistogramStack, low: float = SCAN_LOW, high: float = SCAN_HIGH,
               coarse_step: float = COARSE_STEP, fine_step: float = FINE_STEP, levels=None) -> DelayScan:
    """Reconstruct the delay of every test histogram with ``evaluator`` (physics.md §8).

    ``levels(rows, delays)`` gives the rise of the score that bounds the ±1σ interval of the
    tests ``rows`` at ``delays`` ([len(rows), m]); None: 1 everywhere. A ``levels.bound``
    (an upper bound of every level) spares evaluating the levels on the coarse grid."""
    if levels is None:
        def levels(rows, delays):
            return np.ones(np.broadcast_shapes((len(rows), 1), np.shape(delays)))
    coarse = coarse_grid(low, high, coarse_step)
    coarse_scores = np.asarray(evaluator.score(tests, coarse), dtype=np.float64)
    coarse_scores = coarse_scores - coarse_scores.min(axis=1, keepdims=True)
    every = np.arange(len(tests))
    # The fine region: where the rise may be below the level. Levels that are costly to
    # evaluate everywhere (Feldman-Cousins, computed per node) give a bound instead.
    bound = getattr(levels, "bound", None)
    coarse_level = bound if bound is not None else levels(every, np.broadcast_to(coarse, coarse_scores.shape))

    # Fine grids in whole units of the fine step, so grid points are exact decimals
    # (12.3 rather than 12.299999999999999) and coincide with the coarse points.
    per_ns = round(1.0 / fine_step)
    start, stop = fine_region(coarse, coarse_scores, coarse_step, low, high - fine_step, coarse_level)
    first = np.round(start * per_ns).astype(np.int64)
    count = np.round(stop * per_ns).astype(np.int64) - first + 1
    width = int(count.max())
    j = np.arange(width)[None, :]
    valid = j < count[:, None]
    fine = (first[:, None] + np.minimum(j, count[:, None] - 1)) / per_ns

    # Score only the real (test, delay) pairs: regions differ a lot in width, and padding
    # every test to the widest would multiply the work.
    rows, cols = np.nonzero(valid)
    scores = np.full(fine.shape, np.nan)
    chunk = max(1, MAX_CHUNK_ELEMENTS // tests.counts.shape[1])
    for begin in range(0, len(rows), chunk):
        r, c = rows[begin:begin + chunk], cols[begin:begin + chunk]
        scores[r, c] = evaluator.score(tests.select(r), fine[r, c][:, None])[:, 0]
    rel = scores - np.nanmin(scores, axis=1, keepdims=True)
    finite = np.nan_to_num(rel, nan=np.inf)
    excess = finite - levels(every, fine)
    estimate, lower, upper, at_edge = _crossings(fine, finite, valid, excess)
    best = np.where(valid, finite, np.inf).argmin(axis=1)
    flat_lower, flat_upper, degenerate = _flat_range(fine, finite, valid, best)
    # Identical histograms over a range of delays: the estimate is the middle of the range
    # (any of them is as good; the interval spans them all).
    middle = np.round((flat_lower + flat_upper) / 2 * per_ns) / per_ns
    estimate = np.where(degenerate, middle, estimate)
    return DelayScan(estimate, lower, upper, at_edge, degenerate, flat_lower, flat_upper, coarse, coarse_scores,
                     np.where(valid, fine, np.nan), rel)


@dataclass(frozen=True)
class Summary:
    """Bias, resolution and ±1σ coverage of a scenario's tests with known delays, each with
    its statistical uncertainty; ``reason`` says why they are missing (too few tests)."""

    tests: int
    known: int
    bias: float = float("nan")
    bias_error: float = float("nan")
    resolution: float = float("nan")
    resolution_error: float = float("nan")
    coverage: float = float("nan")
    coverage_error: float = float("nan")
    mean_abs_residual: float = float("nan")
    at_edge: int = 0
    plateau: int = 0
    degenerate: int = 0
    reason: str = ""

    def text(self) -> str:
        head = f"{self.tests} test(s)"
        if self.reason:
            body = f"bias, resolution, coverage n/a: {self.reason}"
        else:
            body = (f"bias {self.bias:+.3f} ± {self.bias_error:.3f} ns, resolution {self.resolution:.3f} "
                    f"± {self.resolution_error:.3f} ns, ±1σ coverage {100 * self.coverage:.0f} "
                    f"± {100 * self.coverage_error:.0f}%")
        tail = ""
        if self.plateau:
            tail += f", {self.plateau} on a plateau (interval > {PLATEAU_WIDTH:g} ns)"
        if self.degenerate:
            tail += f", {self.degenerate} whose histogram is the same over a range of delays"
        if self.at_edge:
            tail += f", {self.at_edge} interval(s) at the scan edge"
        return f"{head}: {body}{tail}"


def summarise(truth: np.ndarray, scan: DelayScan) -> Summary:
    """Per-scenario figures: bias = mean residual ± std/√n, resolution = std (n - 1) ±
    std/√(2(n - 1)), coverage = fraction inside ± √(f(1 - f)/n) (binomial)."""
    truth = np.asarray(truth, dtype=np.float64)
    estimate, lower, upper, at_edge, plateau = scan.estimate, scan.lower, scan.upper, scan.at_edge, scan.plateau
    known = ~np.isnan(truth)
    n = int(known.sum())
    base = dict(tests=len(truth), known=n, at_edge=int(np.sum(at_edge)), plateau=int(np.sum(plateau)),
                degenerate=int(np.sum(scan.degenerate)))
    if n < MIN_TESTS_FOR_SUMMARY:
        why = ("no test has a known delay" if n == 0 else
               f"{n} test(s) with a known delay, {MIN_TESTS_FOR_SUMMARY} needed")
        return Summary(**base, reason=why)
    residual = estimate[known] - truth[known]
    inside = (truth[known] >= lower[known]) & (truth[known] <= upper[known])
    spread = float(residual.std(ddof=1))
    f = float(inside.mean())
    return Summary(**base, bias=float(residual.mean()), bias_error=spread / np.sqrt(n),
                   resolution=spread, resolution_error=spread / np.sqrt(2 * (n - 1)),
                   coverage=f, coverage_error=float(np.sqrt(f * (1 - f) / n)),
                   mean_abs_residual=float(np.abs(residual).mean()))
