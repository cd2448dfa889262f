"""The CBC pulse shape S(x) of physics.md §2 and the pulse height h(x) of §3, in float64.

Exactness against the deployed analyzer (and the golden vectors) depends on evaluating S
with the *same operations in the same order* as its C++ (``cbc3PulsePolarExpansion``):
the x-independent factors are computed once, ``pow(xx/tau, 2.)`` is ``y*y`` (what g++ folds
it to; glibc's ``pow`` differs from it by one ulp for ~0.1 % of arguments) and the product is
``A * ((exp(-xx/tau) * y*y) * polar(xx))``. numpy's SIMD ``exp`` differs from glibc's by
one ulp for some arguments (numpy >= 2 on AVX-512 machines), so the compat table, which the
deployed analyzer fills with glibc's ``exp``, takes ``exp`` from libm element by element
(50,100 values: a few ms); :meth:`PulseShape.scalar` uses ``math`` (libm) for the few values
whose comparison with the threshold is too close to trust a vectorised evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COMPAT_TABLE_LENGTH = 100  # compat: S tabulated at whole ns 0..99, zero beyond (quirk)
MODELS = ("compat", "exact")


@dataclass(frozen=True)
class PulseParameters:
    tau: float = 16.043703
    r: float = 99.999857
    theta: float = 40.571650  # radians, used as given
    n_terms: int = 2
    amplitude: float = 1.2459094


def _a(n: int, k: int) -> float:
    """a(N, k) of physics.md §2 (small integers: exact in float64)."""
    f = math.factorial
    return (-1.0) ** k * f(n) * f(n + 2) / (f(n - k) * f(n + 2 - k) * f(k))


class PulseShape:
    """S as a function of xx = x - delay (the delay enters only through xx)."""

    def __init__(self, params: PulseParameters = PulseParameters()):
        self.params = params
        p = params
        self._terms = []  # (rTerm * angularTerm, [a(i,j) ...], [tau^j ...]) per i
        for i in range(p.n_terms):
            r_term = math.pow(p.r, i) / (math.pow(p.tau, 2.0 * i) * float(math.factorial(i + 2)))
            angular = 0.0
            for j in range(i + 1):
                angular += math.pow(math.cos(p.theta), float(i - j)) * math.pow(math.sin(p.theta), float(j))
            self._terms.append((r_term, angular, [_a(i, j) for j in range(i + 1)],
                                [math.pow(p.tau, float(j)) for j in range(i + 1)]))

    def _polar(self, xx, power):
        f_n = 0.0
        for r_term, angular, a, tau_pow in self._terms:
            i = len(a) - 1
            temporal = 0.0
            for j in range(i + 1):
                temporal = temporal + a[j] * power(xx, float(i - j)) * tau_pow[j]
            f_n = f_n + r_term * angular * temporal
        return f_n

    def __call__(self, xx, libm_exp: bool = False) -> np.ndarray:
        """Vectorised S(xx), float64; 0 for xx < 0. ``libm_exp``: glibc's exp, bit for bit
        (slow: for tables, not for millions of hits)."""
        xx = np.asarray(xx, dtype=np.float64)
        tau = self.params.tau
        y = xx / tau
        exp = _libm_exp(-xx / tau) if libm_exp else np.exp(-xx / tau)
        value = self.params.amplitude * (exp * (y * y) * self._polar(xx, _np_power))
        return np.where(xx < 0, 0.0, value)

    def scalar(self, xx: float) -> float:
        """S(xx) with libm (math), the reference for values compared very close to threshold."""
        if xx < 0:
            return 0.0
        tau = self.params.tau
        y = xx / tau
        return self.params.amplitude * (math.exp(-xx / tau) * (y * y) * self._polar(xx, _math_power))


_LIBM_EXP = np.frompyfunc(math.exp, 1, 1)


def _libm_exp(x: np.ndarray) -> np.ndarray:
    return _LIBM_EXP(np.minimum(x, 700.0)).astype(np.float64)


def _np_power(x, n: float):
    return 1.0 if n == 0 else (x if n == 1 else np.power(x, n))


def _math_power(x, n: float):
    return 1.0 if n == 0 else (x if n == 1 else math.pow(x, n))


DEFAULT_SHAPE = PulseShape()


def compat_table(delays, shape: PulseShape = DEFAULT_SHAPE) -> np.ndarray:
    """T[d, k] = S(k) for whole ns k = 0..99 of a pulse starting at each delay: what the
    deployed analyzer tabulates (the integer-division quirk of physics.md §3)."""
    delays = np.asarray(delays, dtype=np.float64)
    key = (delays.tobytes(), id(shape))
    table = _TABLES.get(key)
    if table is None:  # every task of a scan uses the same delays: computed once per process
        k = np.arange(COMPAT_TABLE_LENGTH, dtype=np.float64)
        table = shape(k[None, :] - delays[:, None], libm_exp=True)
        table.flags.writeable = False
        if len(_TABLES) >= 8:
            _TABLES.clear()
        _TABLES[key] = table
    return table


_TABLES: dict[tuple, np.ndarray] = {}  # (delays, shape) -> compat table (read-only), a few


def pulse_height(x, delay: float, model: str = "compat", shape: PulseShape = DEFAULT_SHAPE) -> np.ndarray:
    """h(x) of physics.md §3 for one delay. compat: S(floor(x)) for 0 < x < 100, else 0;
    exact: S(x) for x > 0, else 0."""
    x = np.asarray(x, dtype=np.float64)
    if model == "compat":
        inside = (x > 0) & (x < COMPAT_TABLE_LENGTH)
        k = np.where(inside, np.floor(np.where(inside, x, 0.0)), 0.0)
        return np.where(inside, shape(k - delay), 0.0)
    if model == "exact":
        return np.where(x > 0, shape(x - delay), 0.0)
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")
