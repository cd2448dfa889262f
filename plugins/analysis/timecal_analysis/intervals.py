"""±1σ intervals that cover 68.3 %: the Feldman–Cousins construction of an evaluator's
interval from pseudo-histograms drawn from the templates.

Why not "where the score rises by 1": that is a 68.3 % interval only when the score is −2 ln L
of the histogram's true law, in its asymptotic regime. No built-in score is. A hit fires in a
run of consecutive BXs or in none, so neighbouring bins are correlated (positively when many
hits fire in both, negatively when they fire in one or the other) where every score treats
them as independent; the Poisson deviance and ROOT's error of the mean ignore that a bin
where nearly every hit fires hardly fluctuates (LinearInterpolation and Mean covered 78 % at
15000 e and 95 % at 5800 e in an independent closure); and on the plateaus of ~5800 e the
information is a handful of hits that fire once instead of twice, far from the asymptotic
regime (the likelihood-ratio interval of a Poisson count of 0 or 1 under-covers). The
construction below is the same for every evaluator, built in or plugged in: it only calls
``score``.

Construction (Feldman and Cousins, Phys. Rev. D 57 (1998) 3873: ordering by the likelihood
ratio, here by the evaluator's own score). At every template delay d (a node), draw M pseudo
test histograms of the test's hit count N from the law of the templates at d; for each, the
rise t = score(d) − min over d' of score(d'); the level T(d) is the rise that 68.3 % of them
do not exceed (with discrete outcomes, the one whose share is nearest 68.3 %). A test's
interval is every delay where its own rise is at most T (linear between nodes). It covers
68.3 % by construction, as far as the pseudo-histograms follow the real law; the closure
(examples/closure) measures it on hits drawn from another model.

The law of a histogram at delay d: the N hits are independent, and each fires in one run of
consecutive BXs (the pulse stays above the threshold for one interval) or in none. The
templates give at each delay the firing probability p_b of every bin (OffsetScan over
HitsTrueNumberScan) and how many hits fire in 0, 1, 2, 3, 4 or more BXs (AttributionScan).
Runs of each length, longest first, are placed on the bins in proportion to how much firing
probability each bin still has, and single BXs take what is left: this reproduces the
marginals and the attribution, and (tests/test_intervals.py) the covariance of neighbouring
bins of emulated histograms.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluators import HistogramStack

#: The confidence level of "±1σ".
CONFIDENCE = 0.6827
#: Pseudo-histograms per node: the level's statistical precision (~±0.03 in probability).
PSEUDO = 300
#: Where the pseudo-histograms repeat (a plateau: few distinct outcomes, whose probabilities
#: decide whether an outcome is in or out), this many times more are drawn: identical ones
#: are scored once, so it costs little, and the level no longer flips with the draw.
DISCRETE_FACTOR = 10
#: The best fit of a pseudo-histogram is searched within this many ns of its node (coarse
#: 0.1 ns grid, then 0.01 ns around the best point): plateaus are narrower.
WINDOW = 5.0
COARSE, FINE = 0.1, 0.01
#: Hit counts that differ by less than this factor share their levels (the levels depend on
#: the count through the few rare hits on plateaus, smoothly elsewhere).
HIT_BUCKET = 1.05
#: Runs longer than this (the AttributionScan overflow) are placed as runs of this length.
LONGEST_RUN = 4
#: Rows per score call, so that memory stays bounded (rows x candidates x bins elements).
MAX_ELEMENTS = 3_000_000
#: Bump when the construction changes: cached levels of another format are not read.
LEVELS_FORMAT = "fc1"


def _runs(n_bins: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Every firing pattern: (start, length) of a run, (0, 0) for none; and which bins each covers."""
    patterns = [(0, 0)] + [(start, length) for length in range(1, LONGEST_RUN + 1)
                           for start in range(n_bins - length + 1)]
    membership = np.zeros((len(patterns), n_bins))
    for i, (start, length) in enumerate(patterns):
        membership[i, start:start + length] = 1.0
    return patterns, membership


def pattern_probabilities(p: np.ndarray, fired: np.ndarray, patterns, membership) -> np.ndarray:
    """Probabilities of the patterns for one delay, from the bins' firing probabilities ``p``
    and the fractions ``fired`` of hits firing in 0, 1, ..., LONGEST_RUN (or more) BXs."""
    fired = np.asarray(fired, dtype=np.float64)
    longest = np.zeros(LONGEST_RUN + 1)
    longest[:min(len(fired), LONGEST_RUN + 1)] = fired[:LONGEST_RUN + 1]
    longest[LONGEST_RUN] += fired[LONGEST_RUN + 1:].sum()
    lengths = np.array([length for _, length in patterns])
    probability = np.zeros(len(patterns))
    taken = np.zeros(len(p))
    for length in range(LONGEST_RUN, 1, -1):
        rows = np.flatnonzero(lengths == length)
        room = np.array([max(0.0, float(np.min(p[s:s + length] - taken[s:s + length])))
                         for s, _ in (patterns[r] for r in rows)])
        if longest[length] <= 0 or room.sum() <= 0:
            continue
        share = np.minimum(room, longest[length] * room / room.sum())
        probability[rows] = share
        taken += share @ membership[rows]
    singles = np.flatnonzero(lengths == 1)
    probability[singles] = np.clip(p - taken, 0.0, None)
    probability[0] = max(0.0, 1.0 - probability[1:].sum())
    return probability / probability.sum()


@dataclass(frozen=True)
class PatternModel:
    """The law of a histogram at every template delay (see the module docstring)."""

    delays: np.ndarray  # [n] sorted template delays
    probability: np.ndarray  # [n, n_patterns]
    membership: np.ndarray  # [n_patterns, n_bins]

    @classmethod
    def from_templates(cls, templates: HistogramStack) -> "PatternModel | None":
        """None when the templates do not say how many hits they hold or how many BXs each
        fired (no HitsTrueNumberScan / AttributionScan): then no law can be drawn from."""
        if templates.hits is None or templates.attribution is None or not np.all(templates.hits > 0):
            return None
        order = np.argsort(templates.delays)
        stack = templates.select(order)
        p = np.clip(stack.counts / stack.hits[:, None], 0.0, 1.0)
        fired = stack.attribution / stack.hits[:, None]
        patterns, membership = _runs(p.shape[1])
        probability = np.array([pattern_probabilities(p[i], fired[i], patterns, membership)
                                for i in range(len(stack))])
        return cls(stack.delays, probability, membership)

    def at(self, delay: float) -> np.ndarray:
        """Pattern probabilities at ``delay``, linear between template delays (as the
        evaluators interpolate the templates)."""
        d = self.delays
        right = int(np.clip(np.searchsorted(d, delay, side="right"), 1, len(d) - 1))
        weight = float(np.clip((delay - d[right - 1]) / (d[right] - d[right - 1]), 0.0, 1.0))
        return (1.0 - weight) * self.probability[right - 1] + weight * self.probability[right]

    def sample(self, delay: float, hits: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` pseudo BX histograms [size, n_bins] of ``hits`` hits at ``delay``."""
        return rng.multinomial(hits, self.at(delay), size=size) @ self.membership


def hit_bucket(hits: float) -> int:
    """The hit count whose levels a test of ``hits`` hits uses (counts within ~5 % share)."""
    return int(round(HIT_BUCKET ** round(math.log(max(hits, 1.0)) / math.log(HIT_BUCKET))))


class Levels:
    """T(d) of one evaluator, templates and hit count: the rise of the score above its
    minimum that a ±1σ (68.3 %) interval allows at each node (template delay). Nodes are
    computed when first asked for (a few tests need only the nodes near their delays) and
    kept; ``known`` is what has been computed, to be stored and given back."""

    def __init__(self, evaluator, model: PatternModel, hits: int, pseudo: int = PSEUDO, seed: int = 0,
                 known: dict[float, float] | None = None, low: float = 0.0, high: float = 50.0):
        self.evaluator, self.model, self.hits, self.pseudo, self.seed = evaluator, model, int(hits), pseudo, seed
        self.low, self.high = low, high
        self.nodes = model.delays
        self.known: dict[float, float] = dict(known or {})

    def thresholds(self, nodes: np.ndarray) -> np.ndarray:
        missing = [float(n) for n in np.unique(nodes) if float(n) not in self.known]
        if missing:
            computed = feldman_cousins(self.evaluator, self.model, self.hits, np.asarray(missing), self.pseudo,
                                       self.seed, self.low, self.high)
            self.known.update(zip(missing, map(float, computed)))
        return np.array([self.known[float(n)] for n in np.ravel(nodes)]).reshape(np.shape(nodes))

    def __call__(self, delays: np.ndarray) -> np.ndarray:
        """The level at ``delays`` (any shape), linear between nodes (the larger of the two
        would be biased up by the levels' own statistical noise: +1.3 % coverage)."""
        delays = np.asarray(delays, dtype=np.float64)
        right = np.clip(np.searchsorted(self.nodes, delays), 1, len(self.nodes) - 1)
        left_node, right_node = self.nodes[right - 1], self.nodes[right]
        weight = np.clip((delays - left_node) / (right_node - left_node), 0.0, 1.0)
        return (1.0 - weight) * self.thresholds(left_node) + weight * self.thresholds(right_node)

    def describe(self) -> str:
        return f"Feldman-Cousins 68.3% ({self.pseudo} pseudo-histograms of {self.hits} hits per template delay)"


def _weighted_level(rises: np.ndarray, weights: np.ndarray) -> float:
    """The rise whose cumulative probability is nearest 68.3 %: with discrete outcomes (a
    plateau) an outcome is in or out as a whole, and taking always the first one past
    68.3 % would make every such interval cover more (closure: ~87 % on the 5800 e
    plateaus); the nearest keeps the coverage at 68.3 % on average."""
    order = np.argsort(rises, kind="stable")
    values = rises[order]
    cumulative = np.cumsum(weights[order]) / weights.sum()
    last = np.r_[values[1:] != values[:-1], True]  # the cumulative probability of each distinct rise
    values, cumulative = values[last], cumulative[last]
    first = int(np.searchsorted(cumulative, CONFIDENCE - 1e-12))
    below = cumulative[first - 1] if first > 0 else 0.0
    return float(values[first - 1] if first > 0 and CONFIDENCE - below < cumulative[first] - CONFIDENCE
                 else values[first])


def feldman_cousins(evaluator, model: PatternModel, hits: int, nodes: np.ndarray, pseudo: int = PSEUDO,
                    seed: int = 0, low: float = 0.0, high: float = 50.0) -> np.ndarray:
    """The levels T(d) at ``nodes`` for tests of ``hits`` hits (see the module docstring)."""
    top = high - FINE
    coarse = np.arange(-WINDOW, WINDOW + COARSE / 2, COARSE)
    fine = np.arange(-COARSE, COARSE + FINE / 2, FINE)
    n_bins = model.membership.shape[1]
    rows_per_call = max(1, MAX_ELEMENTS // (len(coarse) * n_bins))
    # Pseudo-histograms per node, from a stream of the node's own (the same node gives the
    # same level whichever other nodes are asked for); identical ones are scored once.
    node_of, counts, weights = [], [], []
    for j, node in enumerate(nodes):
        rng = np.random.default_rng([seed, int(hits), int(round(node * 1000))])
        unique, multiplicity = np.unique(model.sample(node, hits, pseudo, rng), axis=0, return_counts=True)
        if len(unique) * 3 <= pseudo:  # discrete outcomes: their probabilities must be precise
            unique, multiplicity = np.unique(model.sample(node, hits, pseudo * DISCRETE_FACTOR, rng), axis=0,
                                             return_counts=True)
        node_of.append(np.full(len(unique), j))
        counts.append(unique)
        weights.append(multiplicity)
    node_of = np.concatenate(node_of)
    counts = np.concatenate(counts).astype(np.float64)
    weights = np.concatenate(weights).astype(np.float64)
    rises = np.empty(len(counts))
    for begin in range(0, len(counts), rows_per_call):
        rows = slice(begin, begin + rows_per_call)
        at = nodes[node_of[rows]]
        stack = HistogramStack(at, counts[rows], np.sqrt(counts[rows]), np.full(len(at), float(hits)))
        grid = np.clip(at[:, None] + coarse[None, :], low, top)
        scores = evaluator.score(stack, grid)
        best = grid[np.arange(len(at)), scores.argmin(axis=1)]
        refined = np.clip(best[:, None] + fine[None, :], low, top)
        minimum = np.minimum(scores.min(axis=1), evaluator.score(stack, refined).min(axis=1))
        rises[rows] = np.maximum(evaluator.score(stack, at[:, None])[:, 0] - minimum, 0.0)
    return np.array([_weighted_level(rises[node_of == j], weights[node_of == j]) for j in range(len(nodes))])


class LevelsByTest:
    """The level of every test of a scan (each by its hit count), as ``scan_delay`` asks for
    it: ``levels(rows, delays)`` with ``delays`` [len(rows), m]. A test without levels (no
    hit count, or templates without AttributionScan) keeps the plain rise of 1."""

    #: No level exceeds this (the rescan region of scan_delay); seen: up to ~3 on plateaus.
    bound = 9.0

    def __init__(self, per_test: list[Levels | None]):
        self.per_test = per_test

    def __call__(self, rows: np.ndarray, delays: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        delays = np.broadcast_to(np.asarray(delays, dtype=np.float64), (len(rows), np.shape(delays)[-1]))
        out = np.ones(delays.shape)
        by_levels: dict[int, list[int]] = {}
        for k, row in enumerate(rows):
            levels = self.per_test[int(row)]
            if levels is not None:
                by_levels.setdefault(id(levels), []).append(k)
        for ks in by_levels.values():
            ks = np.asarray(ks)
            out[ks] = self.per_test[int(rows[ks[0]])](delays[ks])
        return out

    def describe(self, row: int) -> str:
        levels = self.per_test[row]
        return levels.describe() if levels is not None else UNCALIBRATED


#: What an interval is when it could not be calibrated, and when it was not asked to be.
UNCALIBRATED = "rise of 1 (not calibrated: no hit count or no AttributionScan)"
RISE_OF_ONE = "rise of 1 (--sigma rise-of-one, physics.md §8: not a calibrated 68.3% interval)"


# --------------------------------------------------------------------------- per test, cached
def test_levels(evaluator, tests: HistogramStack, cache: Path | None = None, pseudo: int = PSEUDO) -> LevelsByTest:
    """The levels of every test: by its hit count (:func:`hit_bucket`), from the evaluator's
    templates; a test without hit count, or templates without attribution, get none. The
    nodes computed are kept in ``cache`` (a directory beside the evaluator's cache, valid
    while it is: the file names the evaluator's cache key) and read back next time."""
    model = PatternModel.from_templates(evaluator.templates)
    hits = tests.hits
    by_bucket: dict[int, Levels] = {}
    per_test: list[Levels | None] = []
    for i in range(len(tests)):
        if model is None or hits is None or not np.isfinite(hits[i]) or hits[i] <= 0:
            per_test.append(None)
            continue
        bucket = hit_bucket(hits[i])
        if bucket not in by_bucket:
            by_bucket[bucket] = Levels(evaluator, model, bucket, pseudo, known=_load(cache, bucket, pseudo))
        per_test.append(by_bucket[bucket])
    levels = LevelsByTest(per_test)
    levels.cache = (cache, pseudo, by_bucket)
    return levels


def _file(cache: Path, bucket: int, pseudo: int) -> Path:
    return cache / f"levels_{bucket}hits_{pseudo}pseudo.json"


def _load(cache: Path | None, bucket: int, pseudo: int) -> dict[float, float]:
    if cache is None:
        return {}
    try:
        return {float(k): float(v) for k, v in json.loads(_file(cache, bucket, pseudo).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}  # none yet, or damaged: computed again


def save(levels: LevelsByTest) -> None:
    """Keep the nodes computed during a run for the next one."""
    cache, pseudo, by_bucket = getattr(levels, "cache", (None, 0, {}))
    if cache is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    for bucket, lv in by_bucket.items():
        path = _file(cache, bucket, pseudo)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({repr(k): v for k, v in sorted(lv.known.items())}))
        os.replace(tmp, path)
