"""Delay-calibration evaluators (physics.md §8): how a test BX histogram is compared with
templates at known delays, and the on-disk cache that spares re-reading a template file.

An evaluator is whatever a ``timecal_evaluators`` hook's ``EvaluatorMethod.build`` returns
from a :class:`HistogramStack` of templates. The delay scan (:mod:`.calibration`) only
needs its vectorised ``score``; the report uses ``illustrate`` and ``templates``. Plugins
register more methods with the same contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import EvaluatorMethod
from timecal_core.cms.harvested_layout import BX_HIGH, BX_LOW, BX_NBINS, MODES
from timecal_core.cms.readers import read_maps

#: Bin centres of TH1F(11, -5.5, 5.5): -5 .. 5 (bx - 1 given the fill shift).
BIN_CENTRES = BX_LOW + (np.arange(BX_NBINS) + 0.5) * (BX_HIGH - BX_LOW) / BX_NBINS
#: Guards the logarithm of the Poisson deviance against empty expected bins.
DEVIANCE_EPSILON = 1e-9
#: Two delays closer than this are the same histogram (file delays are accumulated doubles).
DELAY_TOLERANCE = 1e-3
#: Bump when the pickled evaluators change shape, so that old caches are rebuilt.
CACHE_FORMAT = 3  # 3: HistogramStack.attribution


@dataclass(frozen=True)
class DelayWindow:
    """Every histogram of a file whose delay lies in [low, high] (``delays: {min:, max:}``)."""

    low: float
    high: float


@dataclass(frozen=True)
class HistogramStack:
    """BX histograms one per row, in-range bins only (ROOT bins 1..11, flows dropped as
    the analyzer's own mean does).

    ``delays`` are the delays the rows were filled at (NaN when unknown, e.g. a measured
    histogram); ``errors`` are sqrt(sumw2) as stored in the file; ``hits`` the number of
    selected hits behind each row (HitsTrueNumberScan, which fills every hit at every bx),
    None for a histogram that does not record it (measured data); ``attribution`` how many
    of them fired in 0, 1, 2, 3, 4 and 5 or more BXs (AttributionScan), None when unknown.
    """

    delays: np.ndarray  # [n]
    counts: np.ndarray  # [n, 11]
    errors: np.ndarray  # [n, 11]
    hits: np.ndarray | None = None  # [n]
    attribution: np.ndarray | None = None  # [n, 6]

    def __len__(self) -> int:
        return len(self.delays)

    def select(self, index) -> "HistogramStack":
        return HistogramStack(self.delays[index], self.counts[index], self.errors[index],
                              None if self.hits is None else self.hits[index],
                              None if self.attribution is None else self.attribution[index])


def read_stack(path: Path, mode: str, delays=None, source: str = "") -> HistogramStack:
    """The OffsetScan rows of ``mode`` at ``delays`` (all rows when None; a list of delays;
    or a :class:`DelayWindow`) of a harvested file.

    Missing files, objects, modes or delays are UserErrors naming ``source`` (the YAML key
    that asked for them) and what is available.
    """
    where = f"{source}: " if source else ""
    path = Path(path)
    if mode not in MODES:
        raise UserError(f"{where}mode '{mode}' is not one of {', '.join(MODES)}")
    if not path.is_file():
        raise UserError(f"{where}file '{path}' does not exist")
    try:
        maps = read_maps(path)
    except KeyError as exc:
        raise UserError(f"{where}{exc.args[0]} (is it a harvested BX histogram file?)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}cannot read '{path}' as a ROOT file: {exc}") from None
    counts = maps.offset_scan[mode][:, 1:-1]
    errors = maps.errors[mode][:, 1:-1]
    file_delays = np.asarray(maps.delays, dtype=np.float64)
    if delays is None:
        rows = np.arange(len(file_delays))
    elif isinstance(delays, DelayWindow):
        rows = np.flatnonzero((file_delays >= delays.low - DELAY_TOLERANCE)
                              & (file_delays <= delays.high + DELAY_TOLERANCE))
        if not len(rows):
            raise UserError(f"{where}{path.name} has no {mode} histogram with a delay in "
                            f"[{delays.low:g}, {delays.high:g}] ns; it holds delays from "
                            f"{file_delays.min():g} to {file_delays.max():g} ns")
    else:
        wanted = np.atleast_1d(np.asarray(delays, dtype=np.float64))
        distance = np.abs(file_delays[None, :] - wanted[:, None])
        rows = distance.argmin(axis=1)
        missing = wanted[distance[np.arange(len(wanted)), rows] > DELAY_TOLERANCE]
        if len(missing):
            raise UserError(
                f"{where}{path.name} has no {mode} histogram at delay "
                f"{', '.join(f'{d:g}' for d in missing)} ns; it holds {len(file_delays)} delays "
                f"from {file_delays.min():g} to {file_delays.max():g} ns")
    # Every hit is filled once at every bx (bx = -5 in the underflow, the last bin empty),
    # so any in-range bin holds the hit count; the largest is robust to the empty one.
    hits = maps.hits_true[mode][:, 1:-1].max(axis=1).astype(np.float64)
    # AttributionScan: bins 0..4 BXs fired, then the overflow (5 or more); no underflow.
    attribution = maps.attribution[mode][:, 1:].astype(np.float64)
    return HistogramStack(file_delays[rows], counts[rows].astype(np.float64),
                          errors[rows].astype(np.float64), hits[rows], attribution[rows])


@runtime_checkable
class Evaluator(Protocol):
    """What ``EvaluatorMethod.build`` returns."""

    templates: HistogramStack

    def score(self, tests: HistogramStack, delays: np.ndarray) -> np.ndarray:
        """Score of every test at every candidate delay, lower is better, in units where a
        rise of 1 above the minimum is one standard deviation. ``delays`` broadcasts to
        [n_tests, n_candidates] (one shared row, or one row per test); returns that shape.
        Rows must be independent: the scan passes tests repeated or in any order."""

    def illustrate(self, ax) -> None:
        """Draw what the evaluator compares against, for the report."""


def _as_grid(delays: np.ndarray, n_tests: int) -> np.ndarray:
    grid = np.asarray(delays, dtype=np.float64)
    if grid.ndim == 1:
        grid = grid[None, :]
    return np.broadcast_to(grid, (n_tests, grid.shape[1]))


def histogram_mean(stack: HistogramStack) -> tuple[np.ndarray, np.ndarray]:
    """m = mean + 0.5 and its error, as ROOT's TH1::GetMean / GetMeanError give them.

    Physics.md §8 takes "the histogram mean + 0.5", ROOT's convention (fills sit 0.5 below
    the bin centres), so its error is ROOT's too: RMS / sqrt(N_eff) with
    N_eff = (sum w)^2 / sum s^2. The §7 *observable* error sqrt(sum (s c)^2) / sum w is no
    error of the mean: it vanishes when every hit is in the bin centred at 0, which made
    intervals far too narrow there and too wide elsewhere (coverage 80-90 % in closure).
    """
    total = stack.counts.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    centre_mean = (stack.counts * BIN_CENTRES).sum(axis=1) / safe
    variance = (stack.counts * (BIN_CENTRES - centre_mean[:, None]) ** 2).sum(axis=1) / safe
    sumw2 = (stack.errors ** 2).sum(axis=1)
    error = np.sqrt(variance * sumw2) / safe
    return centre_mean + 0.5, error


class MeanEvaluator:
    """Compares one number, the mean BX, with its value interpolated between templates."""

    def __init__(self, templates: HistogramStack):
        order = np.argsort(templates.delays)
        self.templates = templates.select(order)
        self.means, self.errors = histogram_mean(self.templates)

    def expected(self, delays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.templates.delays
        return np.interp(delays, d, self.means), np.interp(delays, d, self.errors)

    def score(self, tests: HistogramStack, delays: np.ndarray) -> np.ndarray:
        grid = _as_grid(delays, len(tests))
        mean, error = self.expected(grid)
        test_mean, test_error = histogram_mean(tests)
        distance = np.abs(test_mean[:, None] - mean)
        combined = np.sqrt(test_error[:, None] ** 2 + error ** 2)
        # All entries in the bin centred at 0 give a zero error: then only equality scores 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(distance > 0, distance / combined, 0.0)

    def illustrate(self, ax) -> None:
        d = self.templates.delays
        ax.fill_between(d, self.means - self.errors, self.means + self.errors, alpha=0.3,
                        label=r"$\pm 1\sigma$ (template)")
        ax.plot(d, self.means, label="template mean + 0.5")
        ax.set_xlabel("Delay [ns]")
        ax.set_ylabel("Mean BX + 0.5")
        ax.legend()


class LinearInterpolationEvaluator:
    """Compares the whole BX shape with the bin-wise linear interpolation of the two nearest
    templates, normalised to the test's entries, through the Poisson deviance."""

    def __init__(self, templates: HistogramStack):
        order = np.argsort(templates.delays)
        self.templates = templates.select(order)

    def expected_shape(self, delays: np.ndarray) -> np.ndarray:
        """Interpolated templates at ``delays`` (any shape), normalised to unit sum: [..., 11]."""
        d = self.templates.delays
        right = np.clip(np.searchsorted(d, delays, side="right"), 1, len(d) - 1)
        left = right - 1
        weight = np.clip((delays - d[left]) / (d[right] - d[left]), 0.0, 1.0)[..., None]
        counts = self.templates.counts
        shape = (1.0 - weight) * counts[left] + weight * counts[right]
        total = shape.sum(axis=-1, keepdims=True)
        return shape / np.where(total > 0, total, 1.0)

    def score(self, tests: HistogramStack, delays: np.ndarray) -> np.ndarray:
        grid = _as_grid(delays, len(tests))
        n = tests.counts[:, None, :]
        f = n.sum(axis=-1, keepdims=True) * self.expected_shape(grid)
        eps = DEVIANCE_EPSILON
        return 2.0 * (f - n + n * np.log((n + eps) / (f + eps))).sum(axis=-1)

    def illustrate(self, ax) -> None:
        d = self.templates.delays
        shape = self.expected_shape(d)
        for b in np.flatnonzero(shape.max(axis=0) > 0.01):
            ax.plot(d, shape[:, b], label=f"BX bin {BIN_CENTRES[b]:+.0f}")
        ax.set_xlabel("Delay [ns]")
        ax.set_ylabel("Template fraction per bin")
        ax.legend(ncol=2, fontsize="small")


def _xlogx_over(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x ln(x / y), 0 where x = 0 (its limit)."""
    positive = x > 0
    return np.where(positive, x * np.log(np.where(positive, x, 1.0) / y), 0.0)


class BinomialEvaluator:
    """Each BX bin as a binomial count: of the test's N hits (HitsTrueNumberScan), k_b fired
    in bin b, with the probability p_b(d) the templates give at delay d (fired / hits of
    each template row, interpolated linearly between the two nearest template delays).

    Why not the Poisson deviance: a sampled hit fires in one BX or two, so a bin where
    nearly every hit fires varies far less than its count (N p (1 - p), not N p), and the
    hits that fire nowhere carry information too; the Poisson deviance, normalised to the
    test's entries, overstates the uncertainty (closure coverage 77-80 % instead of 68 %).
    The score is the binomial deviance summed over bins, -2 ln L(d) up to a constant; bins
    are treated as independent (see docs/physics.md §9 for when that holds). Templates
    must have many more hits than a test: their own fluctuations are neglected.

    A test without a hit count (measured data) cannot be scored binomially: it gets the
    Poisson deviance of its shape against the normalised p(d), as LinearInterpolation does,
    with that method's (over-covering) intervals.
    """

    def __init__(self, templates: HistogramStack):
        if templates.hits is None or not np.all(templates.hits > 0):
            raise UserError("Binomial evaluator: the template histograms carry no hit count "
                            "(HitsTrueNumberScan); use LinearInterpolation or Mean for them")
        order = np.argsort(templates.delays)
        self.templates = templates.select(order)
        self.probability = self.templates.counts / self.templates.hits[:, None]
        # p is kept half a template hit away from 0 and 1: a bin the templates never (or
        # always) saw fire stays possible, at the templates' own resolution.
        self.floor = 0.5 / float(self.templates.hits.min())

    def expected_probability(self, delays: np.ndarray, clip: bool = True) -> np.ndarray:
        """p_b at ``delays`` (any shape): [..., 11], kept inside [floor, 1 - floor]."""
        d = self.templates.delays
        right = np.clip(np.searchsorted(d, delays, side="right"), 1, len(d) - 1)
        left = right - 1
        weight = np.clip((delays - d[left]) / (d[right] - d[left]), 0.0, 1.0)[..., None]
        p = (1.0 - weight) * self.probability[left] + weight * self.probability[right]
        return np.clip(p, self.floor, 1.0 - self.floor) if clip else p

    def score(self, tests: HistogramStack, delays: np.ndarray) -> np.ndarray:
        grid = _as_grid(delays, len(tests))
        k = tests.counts[:, None, :]
        if tests.hits is None or not np.all(np.isfinite(tests.hits)):
            # No hit count (measured data): only the shape is known, and the bins of the
            # shape are Poisson counts given their sum (LinearInterpolation's deviance).
            p = self.expected_probability(grid, clip=False)
            p = p / np.where(p.sum(axis=-1, keepdims=True) > 0, p.sum(axis=-1, keepdims=True), 1.0)
            f = k.sum(axis=-1, keepdims=True) * p
            eps = DEVIANCE_EPSILON
            return 2.0 * (f - k + k * np.log((k + eps) / (f + eps))).sum(axis=-1)
        p = self.expected_probability(grid)
        n = np.maximum(np.asarray(tests.hits, dtype=np.float64)[:, None, None], k.max(axis=-1, keepdims=True))
        return 2.0 * (_xlogx_over(k, n * p) + _xlogx_over(n - k, n * (1.0 - p))).sum(axis=-1)

    def illustrate(self, ax) -> None:
        d = self.templates.delays
        for b in np.flatnonzero(self.probability.max(axis=0) > 0.01):
            ax.plot(d, self.probability[:, b], label=f"BX bin {BIN_CENTRES[b]:+.0f}")
        ax.set_xlabel("Delay [ns]")
        ax.set_ylabel("Firing probability per bin")
        ax.legend(ncol=2, fontsize="small")


def builtin_methods() -> list[EvaluatorMethod]:
    return [
        EvaluatorMethod("Mean", MeanEvaluator,
                        "mean BX interpolated vs delay, |difference| over the combined error"),
        EvaluatorMethod("LinearInterpolation", LinearInterpolationEvaluator,
                        "bin-wise interpolated template, Poisson deviance"),
        EvaluatorMethod("Binomial", BinomialEvaluator,
                        "firing probability per bin interpolated vs delay, binomial deviance "
                        "out of the test's hit count"),
    ]


# --------------------------------------------------------------------------- cache
def _file_key(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _selection_key(delays):
    if delays is None:
        return None
    if isinstance(delays, DelayWindow):
        return {"min": delays.low, "max": delays.high}
    return [float(d) for d in np.atleast_1d(delays)]


def evaluator_dir(calibration_root: Path, method: str, name: str) -> Path:
    return Path(calibration_root) / "evaluators" / method / name


def build_evaluator(method: EvaluatorMethod, name: str, template: Path, mode: str,
                    calibration_root: Path, delays=None, source: str = "",
                    version: str = "") -> tuple[object, bool]:
    """The evaluator ``name`` of ``method`` from ``template``, and whether it came from the cache.

    The cache under ``<calibration>/evaluators/<method>/<name>/`` is reused while the
    template file (path, size, mtime), the histogram selection and the method's version are
    unchanged; anything else rebuilds it, so editing a template is always picked up.
    """
    template = Path(template)
    if not template.is_file():
        raise UserError(f"{source}: template file '{template}' does not exist")
    key = {"format": CACHE_FORMAT, "method": method.name, "version": version, "mode": mode,
           "delays": _selection_key(delays),
           "template": _file_key(template)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    directory = evaluator_dir(calibration_root, method.name, name)
    cached = directory / "evaluator.pkl"
    key_file = directory / "source.json"
    if cached.is_file() and key_file.is_file():
        try:
            if json.loads(key_file.read_text()).get("digest") == digest:
                with open(cached, "rb") as fh:
                    return pickle.load(fh), True
        except (OSError, ValueError, pickle.UnpicklingError, AttributeError, ImportError, EOFError):
            pass  # a damaged or outdated cache is rebuilt below
    evaluator = method.build(read_stack(template, mode, delays, source))
    directory.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)  # never pair an old key with a new evaluator
    tmp = directory / f".evaluator.pkl.{os.getpid()}"
    with open(tmp, "wb") as fh:
        pickle.dump(evaluator, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, cached)
    key_file.write_text(json.dumps({"digest": digest, **key}, indent=1, sort_keys=True) + "\n")
    return evaluator, False
