"""Hit detection of physics.md §5 and the histograms of §6, for many hits and delays at once.

Two computations of the same thing:

* :func:`reference_emulate` follows the analyzer literally (per delay, vectorised over
  hit x bx x sample). It is the independent computation the tests compare with, and the
  fallback for the rare inputs where an assumption of the fast path does not hold.
* :func:`emulate` avoids the (hit x delay x bx x sample) product, which is what makes
  rescanning 10^5 hits x 501 delays interactive:

  - ``compat``: the pulse is a table T[d, k] (k = whole ns), so whether a hit is above
    threshold at (d, k) only depends on its rank in ``z = thr / q``: the hits above form a
    prefix of that order, of length p[d, k] (computed with a searchsorted and an exact
    float64 re-check of the few hits whose z is within 1e-12 of T). The table indices a hit
    visits (one per bx for Sampled, 23 per bx for Latched) only depend on its time of
    arrival, so hits fall into a few hundred *signature* groups; within a group, each
    bx fires for a rank interval ([0, p) for Sampled; [p(k_0), max_j>=1 p(k_j)) for Latched,
    valid because the positive part of T[d, .] is unimodal, which is checked per delay).
    Counting hits of a group in rank intervals is a searchsorted; the number of BXs a hit
    fires in is a step function of its rank, which gives the attribution histograms.
  - ``exact``: per hit, the above-threshold window (xlo, xhi) of q * S(xx) is found by
    bisection; each sample then fires on an interval of the (sorted) delay grid, with grid
    points within 1e-6 ns of an edge re-evaluated exactly. Sample j of a (hit, bx) is above
    on [a_j, b_j) (both nondecreasing in j, checked), so at any delay the samples above are
    consecutive and Latched fires iff the first of them is j >= 1: on
    [b_0, b_22) minus the gaps [b_{j-1}, min(a_j, b_j)). Histograms are accumulated from
    interval end points (difference arrays), attribution from per-hit step functions.

Whatever the fast path cannot prove (non-unimodal table, ties in z that break the rank
order, thresholds <= 0, peaks within 1e-6 of threshold, unsorted delays) goes to the
reference computation for the hits or delays concerned, so results are always exact.
"""

from __future__ import annotations

import numpy as np
from timecal_core.cms.harvested_layout import BXHistograms

from .pulse import COMPAT_TABLE_LENGTH, DEFAULT_SHAPE, MODELS, compat_table

BX = np.arange(-5, 6)
N_BX = BX.size
BX_TIME = 25.0
N_BX_BINS = 13  # TH1F(11, -5.5, 5.5) incl. flows
N_ATTR_BINS = 7  # TH1(5, -0.5, 4.5) incl. flows
SENTINEL = COMPAT_TABLE_LENGTH  # table column holding 0: "outside 0 < x < 100"


def _latch_instants() -> np.ndarray:
    """i_j = 2.7f, 3.7f, ... accumulated in float32 while <= 25 (23 instants)."""
    values, i = [], np.float32(2.7)
    while i <= np.float32(BX_TIME):
        values.append(i)
        i = np.float32(i + np.float32(1.0))
    return np.array(values, dtype=np.float32)


LATCH_INSTANTS = _latch_instants()
N_SAMPLES = LATCH_INSTANTS.size


def _find_fix_bin(x: np.ndarray, nbins: int, low: float, high: float) -> np.ndarray:
    """TAxis::FindFixBin: 0 underflow, nbins + 1 overflow."""
    x = np.asarray(x, dtype=np.float64)
    inside = 1 + np.floor(nbins * (x - low) / (high - low)).astype(np.int64)
    return np.where(x < low, 0, np.where(x < high, inside, nbins + 1))


BX_BIN = _find_fix_bin(BX - 1.5, 11, -5.5, 5.5)  # quirk: filled at bx - 1.5
ATTR_BIN = _find_fix_bin(np.arange(N_BX + 1), 5, -0.5, 4.5)  # number of BXs fired -> bin


class _Counts:
    """Flow-inclusive histogram contents being accumulated, [n_delays, bins]."""

    def __init__(self, n_delays: int):
        self.sampled = np.zeros((n_delays, N_BX_BINS), dtype=np.int64)
        self.latched = np.zeros((n_delays, N_BX_BINS), dtype=np.int64)
        self.attribution_sampled = np.zeros((n_delays, N_ATTR_BINS), dtype=np.int64)
        self.attribution_latched = np.zeros((n_delays, N_ATTR_BINS), dtype=np.int64)

    def add_bx(self, rows, sampled_bx: np.ndarray, latched_bx: np.ndarray) -> None:
        """Add per-bx counts [len(rows), 11]."""
        self.sampled[np.ix_(rows, BX_BIN)] += sampled_bx
        self.latched[np.ix_(rows, BX_BIN)] += latched_bx

    def add(self, rows, other: "_Counts") -> None:
        for name in ("sampled", "latched", "attribution_sampled", "attribution_latched"):
            getattr(self, name)[rows] += getattr(other, name)

    def histograms(self, delays, n_hits: int, offset_step: float) -> BXHistograms:
        return BXHistograms(np.asarray(delays, dtype=np.float64), self.sampled, self.latched,
                            self.attribution_sampled, self.attribution_latched, int(n_hits), offset_step)


def _inputs(charge, toa, threshold):
    charge = np.ascontiguousarray(charge, dtype=np.float32).ravel()
    toa = np.ascontiguousarray(toa, dtype=np.float32).ravel()
    if charge.shape != toa.shape:
        raise ValueError(f"charge ({charge.size}) and toa ({toa.size}) differ in length")
    threshold = np.asarray(threshold, dtype=np.float32)
    if threshold.ndim == 0:
        threshold = np.full(charge.shape, threshold, dtype=np.float32)
    threshold = np.ascontiguousarray(threshold).ravel()
    if threshold.shape != charge.shape:
        raise ValueError(f"threshold has {threshold.size} values for {charge.size} hits")
    return charge, toa, threshold


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def sample_times(toa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The analyzer's sampling instants per hit and bx, with its float32 arithmetic:
    Sampled x = 25.0 - t' [n, 11] and Latched u_j = float32(-t' + i_j) [n, 11, 23], float64."""
    shifted = toa[:, None] - (BX * 25).astype(np.float32)[None, :]  # t' in float32
    sampled = BX_TIME - shifted.astype(np.float64)
    latched = ((-shifted)[:, :, None] + LATCH_INSTANTS[None, None, :]).astype(np.float64)
    return sampled, latched


def compat_index(x: np.ndarray) -> np.ndarray:
    """Table column for h(x) in compat: floor(x) for 0 < x < 100, else the zero sentinel."""
    inside = (x > 0) & (x < COMPAT_TABLE_LENGTH)
    return np.where(inside, np.floor(np.where(inside, x, 0.0)), SENTINEL).astype(np.int16)


def _extended_table(delays) -> np.ndarray:
    table = compat_table(delays)
    return np.concatenate([table, np.zeros((table.shape[0], 1))], axis=1)


# =========================================================================== reference
def _reference_counts(charge, toa, threshold, delays, model, chunk_size=20_000) -> _Counts:
    counts = _Counts(len(delays))
    table = _extended_table(delays) if model == "compat" else None
    for start in range(0, charge.size, chunk_size):
        q = charge[start:start + chunk_size].astype(np.float64)
        thr = threshold[start:start + chunk_size].astype(np.float64)
        xs, xu = sample_times(toa[start:start + chunk_size])
        if model == "compat":
            ks, ku = compat_index(xs), compat_index(xu)
        for d, delay in enumerate(delays):
            if model == "compat":
                hs, hu = table[d][ks], table[d][ku]
            else:
                hs = np.where(xs > 0, DEFAULT_SHAPE(xs - delay), 0.0)
                hu = np.where(xu > 0, DEFAULT_SHAPE(xu - delay), 0.0)
            sampled = hs * q[:, None] > thr[:, None]
            above = hu * q[:, None, None] > thr[:, None, None]
            latched = np.any(above[:, :, 1:] & ~above[:, :, :-1], axis=2)
            counts.add_bx([d], sampled.sum(axis=0)[None, :], latched.sum(axis=0)[None, :])
            counts.attribution_sampled[d] += np.bincount(ATTR_BIN[sampled.sum(axis=1)], minlength=N_ATTR_BINS)
            counts.attribution_latched[d] += np.bincount(ATTR_BIN[latched.sum(axis=1)], minlength=N_ATTR_BINS)
    return counts


def reference_emulate(charge, toa, threshold, delays, model: str = "compat",
                      offset_step: float = 0.1) -> BXHistograms:
    """The analyzer's loop written out per delay over (hit, bx, sample): slow, obviously right."""
    _check_model(model)
    charge, toa, threshold = _inputs(charge, toa, threshold)
    delays = np.atleast_1d(np.asarray(delays, dtype=np.float64))
    counts = _reference_counts(charge, toa, threshold, delays, model)
    return counts.histograms(delays, charge.size, offset_step)


# =========================================================================== compat fast path
_Z_EPS = 1e-12  # relative: beyond it, z = thr/q vs T decides fl(q*T) > thr for sure
_REGULAR_MARGIN = 1e-3  # ns from an integer: float32 rounding cannot move a floor further
_REGULAR_TOA = 1000.0  # ns: float32 rounding of t' and u_j stays << the margin below it


def _unimodal_rows(table: np.ndarray) -> np.ndarray:
    """Per delay: positive part nondecreasing up to its maximum and nonincreasing after."""
    pos = np.maximum(table, 0.0)
    peak = np.argmax(pos, axis=1)
    steps = np.diff(pos, axis=1)
    col = np.arange(steps.shape[1])[None, :]
    rising = col < peak[:, None]
    ok = np.where(rising, steps >= 0, steps <= 0)
    return ok.all(axis=1)


def _prefix_lengths(z_sorted, q_sorted, thr_sorted, table):
    """p[d, k] = number of hits (in ascending-z order) with fl(q*T[d,k]) > thr, and the
    positions of hits whose exact test contradicts the z order (to be handled elsewhere)."""
    n_delays, n_cols = table.shape
    flat = table.ravel()
    positive = flat > 0
    t = np.where(positive, flat, 0.0)
    lo = np.searchsorted(z_sorted, t * (1 - _Z_EPS), side="left")
    hi = np.searchsorted(z_sorted, t * (1 + _Z_EPS), side="right")
    lo = np.where(positive, lo, 0)
    hi = np.where(positive, hi, 0)
    p = lo.copy()
    width = hi - lo
    bad = np.zeros(0, dtype=np.int64)
    if width.any():
        cells = np.flatnonzero(width)
        w = width[cells]
        cell_of = np.repeat(cells, w)
        offset = np.arange(w.sum()) - np.repeat(np.cumsum(w) - w, w)
        idx = lo[cell_of] + offset
        above = q_sorted[idx] * flat[cell_of] > thr_sorted[idx]
        n_above = np.bincount(np.repeat(np.arange(cells.size), w), weights=above, minlength=cells.size)
        n_above = n_above.astype(np.int64)
        p[cells] += n_above
        consistent = above == (offset < np.repeat(n_above, w))
        if not consistent.all():
            broken = np.unique(cell_of[~consistent])
            bad = np.unique(np.concatenate([np.arange(lo[c], hi[c]) for c in broken]))
    return p.reshape(n_delays, n_cols), bad


def _signatures(toa: np.ndarray):
    """Group hits by the table columns they visit (delay-independent).

    Returns (group of each hit, Sampled column per group and bx [G, 11], first Latched column
    k_0 [G, 11] (may lie outside the table), the number of regular groups (listed first), and
    all 23 Latched columns of the irregular groups [G_irr, 11, 23] or None). A hit is regular when no
    sampling instant is within 1e-3 ns of a whole ns: then its columns follow from
    floor(25 - t) and floor(i_0 - t) alone (k_j = k_0 + j). The others are grouped on their
    exactly computed columns.
    """
    t = toa.astype(np.float64)
    v = np.float64(LATCH_INSTANTS[0]) - t
    w = BX_TIME - t
    def near_integer(a):
        return np.abs(a - np.round(a)) < _REGULAR_MARGIN
    regular = np.isfinite(t) & (np.abs(t) < _REGULAR_TOA) & ~near_integer(v) & ~near_integer(w)
    base_l = np.floor(np.where(regular, v, 0.0)).astype(np.int64)
    gap = np.floor(np.where(regular, w, 0.0)).astype(np.int64) - base_l  # 22 or 23
    key = base_l * 2 + (gap - 22)
    keys, reg_group = np.unique(key[regular], return_inverse=True)
    n_reg = keys.size
    group = np.empty(toa.size, dtype=np.int64)
    group[regular] = reg_group
    base_l_g = keys // 2
    base_s_g = base_l_g + 22 + keys % 2
    shift = 25 * BX[None, :]
    ks = base_s_g[:, None] + shift
    k0 = base_l_g[:, None] + shift
    ks = np.where((ks >= 0) & (ks < COMPAT_TABLE_LENGTH), ks, SENTINEL)
    irregular = np.flatnonzero(~regular)
    ku_irr = None
    if irregular.size:
        xs, xu = sample_times(toa[irregular])
        rows = np.concatenate([compat_index(xs), compat_index(xu).reshape(irregular.size, -1)], axis=1)
        uniq, irr_group = np.unique(rows, axis=0, return_inverse=True)
        group[irregular] = n_reg + irr_group.ravel()
        ks = np.concatenate([ks, uniq[:, :N_BX].astype(np.int64)])
        ku_irr = uniq[:, N_BX:].reshape(-1, N_BX, N_SAMPLES).astype(np.int64)
        k0 = np.concatenate([k0, ku_irr[:, :, 0]])
    return group, ks, k0, n_reg, ku_irr


def _window_max(p: np.ndarray) -> np.ndarray:
    """M[d, k0 + 23] = max(p[d, k0+1 .. k0+22]) (zero outside the table), k0 = -23 .. 99."""
    n_delays = p.shape[0]
    pad = np.zeros((n_delays, 23 + COMPAT_TABLE_LENGTH + 23), dtype=p.dtype)
    pad[:, 23:23 + COMPAT_TABLE_LENGTH] = p[:, :COMPAT_TABLE_LENGTH]
    n_k0 = COMPAT_TABLE_LENGTH + 23
    out = np.zeros((n_delays, n_k0), dtype=p.dtype)
    for j in range(1, N_SAMPLES):
        np.maximum(out, pad[:, j:j + n_k0], out=out)
    return out


def _compat_fast(q, thr, toa, table):
    """Histograms of hits with q > 0, thr > 0 over delays whose table is unimodal, or, when
    some hits contradict the rank order, (None, their indices) for the caller to set aside."""
    z = thr.astype(np.float64) / q.astype(np.float64)
    order = np.argsort(z, kind="stable")
    z_sorted = z[order]
    q_sorted = q[order].astype(np.float64)
    thr_sorted = thr[order].astype(np.float64)
    p, bad_positions = _prefix_lengths(z_sorted, q_sorted, thr_sorted, table)
    if bad_positions.size:
        return None, order[bad_positions]
    p[:, SENTINEL] = 0
    group, ks, k0, n_reg, ku_irr = _signatures(toa[order])  # in rank order: position = rank
    n_delays = table.shape[0]
    n_groups = ks.shape[0]
    # Rank breakpoints per (delay, group, bx).
    sampled_b = p[:, ks]  # [D, G, 11]
    k0_col = np.where((k0 >= 0) & (k0 < COMPAT_TABLE_LENGTH), k0, SENTINEL)
    low_b = p[:, k0_col]
    window = _window_max(p)
    k0_reg = np.clip(k0[:n_reg], -23, COMPAT_TABLE_LENGTH - 1) + 23
    high_b = np.empty_like(low_b)
    high_b[:, :n_reg] = window[:, k0_reg]
    if ku_irr is not None:
        high_b[:, n_reg:] = p[:, ku_irr[:, :, 1:]].max(axis=3)
    high_b = np.maximum(high_b, low_b)  # empty interval when U <= L
    # Group members, rank-ascending.
    members = np.argsort(group, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    s_bx = np.zeros((n_delays, N_BX), dtype=np.int64)
    l_bx = np.zeros((n_delays, N_BX), dtype=np.int64)
    attr_s = np.zeros((n_delays, N_BX + 2), dtype=np.int64)  # by number of BXs fired
    attr_l = np.zeros((n_delays, N_BX + 2), dtype=np.int64)
    active_s = (ks != SENTINEL)
    active_l = (high_b > low_b).any(axis=0)  # [G, 11]
    row_index = np.arange(n_delays)[:, None]
    for g in range(n_groups):
        ranks = members[bounds[g]:bounds[g + 1]]
        size = ranks.size
        bx_s = np.flatnonzero(active_s[g])
        if bx_s.size:
            c = np.searchsorted(ranks, sampled_b[:, g, bx_s])  # hits fired in each bx
            s_bx[:, bx_s] += c
            c.sort(axis=1)
            at_least = np.concatenate([np.full((n_delays, 1), size), c[:, ::-1]], axis=1)
            exactly = at_least - np.concatenate([at_least[:, 1:], np.zeros((n_delays, 1), np.int64)], axis=1)
            attr_s[:, :bx_s.size + 1] += exactly
        else:
            attr_s[:, 0] += size
        bx_l = np.flatnonzero(active_l[g])
        if bx_l.size:
            c_low = np.searchsorted(ranks, low_b[:, g, bx_l])
            c_high = np.searchsorted(ranks, high_b[:, g, bx_l])
            l_bx[:, bx_l] += c_high - c_low
            # Step function of rank: +1 at each interval start, -1 at its end.
            c_all = np.concatenate([c_low, c_high], axis=1)
            step = np.concatenate([np.ones_like(c_low), -np.ones_like(c_high)], axis=1)
            by_rank = np.argsort(c_all, axis=1, kind="stable")
            c_sorted = c_all[row_index, by_rank]
            level = np.cumsum(step[row_index, by_rank], axis=1)[:, :-1]
            hits = np.diff(c_sorted, axis=1)
            flat = (row_index * (N_BX + 2) + np.clip(level, 0, N_BX + 1)).ravel()
            fired = np.bincount(flat, weights=hits.ravel(), minlength=n_delays * (N_BX + 2))
            fired = fired.reshape(n_delays, N_BX + 2).astype(np.int64)
            fired[:, 0] = 0
            attr_l += fired
            attr_l[:, 0] += size - fired.sum(axis=1)
        else:
            attr_l[:, 0] += size
    counts = _Counts(n_delays)
    counts.add_bx(np.arange(n_delays), s_bx, l_bx)
    counts.attribution_sampled += _attr_bins(attr_s)
    counts.attribution_latched += _attr_bins(attr_l)
    return counts, None


def _attr_bins(by_number: np.ndarray) -> np.ndarray:
    """[D, number of BXs fired 0..12] -> [D, 7] attribution bins incl. flows."""
    out = np.zeros((by_number.shape[0], N_ATTR_BINS), dtype=np.int64)
    for number in range(min(by_number.shape[1], N_BX + 1)):
        out[:, ATTR_BIN[number]] += by_number[:, number]
    return out


def _compat_chunk(q, toa, thr, delays, table, unimodal, counts: _Counts) -> None:
    fast_rows = np.flatnonzero(unimodal)
    slow_rows = np.flatnonzero(~unimodal)
    if fast_rows.size:
        eligible = (q > 0) & (thr > 0) & np.isfinite(q) & np.isfinite(thr)
        hits = np.flatnonzero(eligible)
        leftover = np.flatnonzero(~eligible)
        while hits.size:
            fast, bad = _compat_fast(q[hits], thr[hits], toa[hits], table[fast_rows])
            if fast is not None:
                counts.add(fast_rows, fast)
                break
            leftover = np.concatenate([leftover, hits[bad]])
            hits = np.delete(hits, bad)
        if leftover.size:
            counts.add(fast_rows, _reference_counts(q[leftover], toa[leftover], thr[leftover],
                                                    delays[fast_rows], "compat"))
    if slow_rows.size:  # whole delays the rank argument does not cover
        counts.add(slow_rows, _reference_counts(q, toa, thr, delays[slow_rows], "compat"))


# =========================================================================== exact fast path
_EDGE_EPS = 1e-6  # ns: grid points closer than this to a window edge are re-evaluated
_PEAK_MARGIN = 1e-6  # relative: peaks this close to threshold go to the reference


def _pulse_extrema():
    """xx of the maximum of S and of its sign change (bisection brackets)."""
    xx = np.linspace(0.0, 100.0, 100_001)
    s = DEFAULT_SHAPE(xx)
    i = int(np.argmax(s))
    lo, hi = xx[max(i - 1, 0)], xx[i + 1]
    for _ in range(200):  # golden-section search for the maximum
        a = hi - (hi - lo) / 1.618033988749895
        b = lo + (hi - lo) / 1.618033988749895
        if DEFAULT_SHAPE(a) > DEFAULT_SHAPE(b):
            hi = b
        else:
            lo = a
    peak = 0.5 * (lo + hi)
    zero = xx[i + np.argmax(s[i:] <= 0)]
    return float(peak), float(zero)


_PEAK_XX, _ZERO_XX = _pulse_extrema()


def _above_window(q, thr):
    """Per hit, (xlo, xhi) with fl(q * S(xx)) > thr for xlo < xx < xhi, found by bisection
    on the rising and falling side of the pulse. NaN where it never fires."""
    q = q.astype(np.float64)
    thr = thr.astype(np.float64)
    def above(xx):
        return DEFAULT_SHAPE(xx) * q > thr
    n = q.size
    lo_a, hi_a = np.zeros(n), np.full(n, _PEAK_XX)  # rising: below at lo, above at hi
    lo_b, hi_b = np.full(n, _PEAK_XX), np.full(n, _ZERO_XX)  # falling: above at lo, below at hi
    for _ in range(60):
        mid = 0.5 * (lo_a + hi_a)
        up = above(mid)
        hi_a = np.where(up, mid, hi_a)
        lo_a = np.where(up, lo_a, mid)
        mid = 0.5 * (lo_b + hi_b)
        up = above(mid)
        lo_b = np.where(up, mid, lo_b)
        hi_b = np.where(up, hi_b, mid)
    return 0.5 * (lo_a + hi_a), 0.5 * (lo_b + hi_b)


def _exact_predicate(x, delay, q, thr):
    return (x > 0) & (DEFAULT_SHAPE(x - delay) * q.astype(np.float64) > thr.astype(np.float64))


def _grid_intervals(x, xlo, xhi, q, thr, delays):
    """Delay-index interval [a, b) where the sample at time x is above threshold, exactly.
    All arguments broadcast to x's shape. Returns a, b and a flag per sample where more
    than one grid point is ambiguous (left to the reference)."""
    shape = x.shape
    x = x.ravel()
    xlo, xhi, q, thr = (np.broadcast_to(v, shape).ravel() for v in (xlo, xhi, q, thr))
    def edge(bound):
        certain = np.searchsorted(delays, bound - _EDGE_EPS, side="right")
        upto = np.searchsorted(delays, bound + _EDGE_EPS, side="left")
        return certain, upto
    a_lo, a_hi = edge(x - xhi)
    b_lo, b_hi = edge(x - xlo)
    hard = (a_hi - a_lo > 1) | (b_hi - b_lo > 1)
    a, b = a_lo.copy(), b_lo.copy()
    for lo_, hi_, is_start in ((a_lo, a_hi, True), (b_lo, b_hi, False)):
        amb = np.flatnonzero((hi_ - lo_ == 1) & ~hard)
        if amb.size:
            d = lo_[amb]
            up = _exact_predicate(x[amb], delays[d], q[amb], thr[amb])
            if is_start:
                a[amb] = np.where(up, d, d + 1)
            else:
                b[amb] = np.where(up, d + 1, d)
    never = ~(x > 0)
    a = np.where(never, 0, a)
    b = np.where(never, 0, np.maximum(b, a))
    return a.reshape(shape), b.reshape(shape), hard.reshape(shape)


def _add_events(hit, pos, step, n_hits, n_delays, attr: np.ndarray) -> None:
    """Attribution from interval events (+1 start, -1 end) on each hit's delay axis."""
    if hit.size == 0:
        attr[:, 0] += n_hits
        return
    order = np.lexsort((pos, hit))
    hit, pos, step = hit[order], pos[order], step[order]
    level = np.cumsum(step)  # per hit the levels return to 0, so a global cumsum works
    same = hit[1:] == hit[:-1]
    start, end, lev = pos[:-1][same], pos[1:][same], level[:-1][same]
    keep = (end > start) & (lev > 0)
    start, end, lev = start[keep], end[keep], np.minimum(lev[keep], N_BX + 1)
    width = n_delays + 1
    diff = np.bincount(lev * width + start, minlength=(N_BX + 2) * width)
    diff -= np.bincount(lev * width + end, minlength=(N_BX + 2) * width)
    per_level = np.cumsum(diff.reshape(N_BX + 2, width), axis=1)[:, :n_delays].T
    attr[:, 1:] += per_level[:, 1:]
    attr[:, 0] += n_hits - per_level[:, 1:].sum(axis=1)


def _exact_chunk(q, toa, thr, delays, counts: _Counts) -> np.ndarray:
    """Histograms of the exact model for a chunk; returns hits left to the reference."""
    n_delays = delays.size
    eligible = (q > 0) & (thr > 0) & np.isfinite(q) & np.isfinite(thr) & np.isfinite(toa)
    peak = DEFAULT_SHAPE(_PEAK_XX) * q.astype(np.float64)
    thr64 = thr.astype(np.float64)
    fires = eligible & (peak > thr64 * (1 + _PEAK_MARGIN))
    silent = eligible & ~(peak > thr64 * (1 - _PEAK_MARGIN))  # never above threshold
    leftover = np.flatnonzero(~fires & ~silent)
    hits = np.flatnonzero(fires)
    xlo, xhi = _above_window(q[hits], thr[hits])
    # Only (hit, bx) pairs whose samples can meet the window at some scanned delay matter.
    shifted = toa[hits][:, None] - (BX * 25).astype(np.float32)[None, :]  # t', float32
    first = ((-shifted) + LATCH_INSTANTS[0]).astype(np.float64)
    last = ((-shifted) + LATCH_INSTANTS[-1]).astype(np.float64)
    xs = BX_TIME - shifted.astype(np.float64)
    margin = 1e-3
    reach_lo, reach_hi = delays[0] - margin, delays[-1] + margin
    relevant = ((np.minimum(first, xs) - xhi[:, None] < reach_hi)
                & (np.maximum(last, xs) - xlo[:, None] > reach_lo))
    pair_hit, pair_bx = np.nonzero(relevant)
    xs = xs[pair_hit, pair_bx]
    xu = ((-shifted[pair_hit, pair_bx])[:, None] + LATCH_INSTANTS[None, :]).astype(np.float64)
    lo, hi, qp, tp = xlo[pair_hit], xhi[pair_hit], q[hits][pair_hit], thr[hits][pair_hit]
    a_s, b_s, hard_s = _grid_intervals(xs, lo, hi, qp, tp, delays)
    a_u, b_u, hard_u = _grid_intervals(xu, lo[:, None], hi[:, None], qp[:, None], tp[:, None], delays)
    monotone = (np.diff(a_u, axis=1) >= 0).all(axis=1) & (np.diff(b_u, axis=1) >= 0).all(axis=1)
    hard_hit = np.zeros(hits.size, dtype=bool)
    hard_hit[pair_hit[hard_s | hard_u.any(axis=1) | ~monotone]] = True
    leftover = np.concatenate([leftover, hits[hard_hit]])
    keep = ~hard_hit[pair_hit]
    pair_hit, pair_bx = pair_hit[keep], pair_bx[keep]
    a_s, b_s, a_u, b_u = a_s[keep], b_s[keep], a_u[keep], b_u[keep]
    n_total = int((~hard_hit).sum()) + int(silent.sum())
    # Sampled: one delay interval per pair.
    sel = b_s > a_s
    hit_s, bx_s, s_start, s_end = pair_hit[sel], pair_bx[sel], a_s[sel], b_s[sel]
    # Latched: [b_0, b_22) minus the gaps [b_{j-1}, min(a_j, b_j)) (module docstring).
    union = b_u[:, -1] > b_u[:, 0]
    hit_l, bx_l, l_start, l_end = pair_hit[union], pair_bx[union], b_u[union, 0], b_u[union, -1]
    gap_end = np.minimum(a_u[:, 1:], b_u[:, 1:])
    gap = gap_end > b_u[:, :-1]
    gap_pair, _ = np.nonzero(gap)
    hit_g, bx_g, g_start, g_end = pair_hit[gap_pair], pair_bx[gap_pair], b_u[:, :-1][gap], gap_end[gap]
    # Per-bx histograms from difference arrays over the delay grid.
    width = n_delays + 1
    def per_bx(bx_plus, pos_plus, bx_minus, pos_minus):
        diff = np.bincount(bx_plus * width + pos_plus, minlength=N_BX * width)
        diff -= np.bincount(bx_minus * width + pos_minus, minlength=N_BX * width)
        return np.cumsum(diff.reshape(N_BX, width), axis=1)[:, :n_delays].T
    s_bx = per_bx(bx_s, s_start, bx_s, s_end)
    l_bx = per_bx(np.concatenate([bx_l, bx_g]), np.concatenate([l_start, g_end]),
                  np.concatenate([bx_l, bx_g]), np.concatenate([l_end, g_start]))
    counts.add_bx(np.arange(n_delays), s_bx, l_bx)
    attr_s = np.zeros((n_delays, N_BX + 2), dtype=np.int64)
    attr_l = np.zeros((n_delays, N_BX + 2), dtype=np.int64)
    _add_events(np.concatenate([hit_s, hit_s]), np.concatenate([s_start, s_end]),
                np.concatenate([np.ones_like(s_start), -np.ones_like(s_end)]), n_total, n_delays, attr_s)
    _add_events(np.concatenate([hit_l, hit_l, hit_g, hit_g]),
                np.concatenate([l_start, l_end, g_start, g_end]),
                np.concatenate([np.ones_like(l_start), -np.ones_like(l_end),
                                -np.ones_like(g_start), np.ones_like(g_end)]), n_total, n_delays, attr_l)
    counts.attribution_sampled += _attr_bins(attr_s)
    counts.attribution_latched += _attr_bins(attr_l)
    return leftover


# =========================================================================== entry point
def emulate(charge, toa, threshold, delays, model: str = "compat", offset_step: float = 0.1,
            chunk_size: int | None = None) -> BXHistograms:
    """Histograms of physics.md §6 for the hits (already selected and smeared).

    ``charge``/``toa`` float32 [n] (electrons, ns), ``threshold`` scalar or float32 [n] (the
    module's smeared threshold per hit), ``delays`` float64 [D]. Identical to
    :func:`reference_emulate` (and to the analyzer), bit for bit. Hits are processed in
    chunks (default 10^6 for compat, 5*10^4 for exact) so memory stays bounded.
    """
    _check_model(model)
    charge, toa, threshold = _inputs(charge, toa, threshold)
    delays = np.atleast_1d(np.asarray(delays, dtype=np.float64))
    counts = _Counts(delays.size)
    if model == "compat":
        chunk_size = chunk_size or 1_000_000
        table = compat_table(delays)
        unimodal = _unimodal_rows(table)
        table = np.concatenate([table, np.zeros((delays.size, 1))], axis=1)
        for start in range(0, charge.size, chunk_size):
            part = slice(start, start + chunk_size)
            _compat_chunk(charge[part], toa[part], threshold[part], delays, table, unimodal, counts)
    else:
        chunk_size = chunk_size or 50_000
        if delays.size > 1 and not (np.diff(delays) > 0).all():
            counts = _reference_counts(charge, toa, threshold, delays, "exact")
            return counts.histograms(delays, charge.size, offset_step)
        for start in range(0, charge.size, chunk_size):
            part = slice(start, start + chunk_size)
            q, t, thr = charge[part], toa[part], threshold[part]
            leftover = _exact_chunk(q, t, thr, delays, counts)
            if leftover.size:
                counts.add(np.arange(delays.size),
                           _reference_counts(q[leftover], t[leftover], thr[leftover], delays, "exact"))
    return counts.histograms(delays, charge.size, offset_step)
