"""Per-module smearing of physics.md §1: threshold += U(-s_thr, +s_thr) and toa +=
U(-s_tof, +s_tof), drawn once per job and kept per module.

Draws are a function of (seed, the module ids of all the job's hits, before selection), so a
module gets the same offsets whatever the pT/subdet cut, in
every chunk of a dump and in every rerun, whatever order the hits come in: the module ids are
sorted, and ``numpy.random.default_rng(seed)`` draws the threshold offsets then the toa
offsets in that order. The table is written to the output file (tree ``smearing``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ModuleSmearing:
    modules: np.ndarray  # uint32, sorted
    threshold_offset: np.ndarray  # float32, electrons
    toa_offset: np.ndarray  # float32, ns

    @classmethod
    def draw(cls, modules, threshold_smearing: float, tof_smearing: float, seed: int) -> "ModuleSmearing":
        modules = np.unique(np.asarray(modules, dtype=np.uint32))
        rng = np.random.default_rng(seed)
        thr = rng.uniform(-threshold_smearing, threshold_smearing, modules.size) if threshold_smearing else \
            np.zeros(modules.size)
        toa = rng.uniform(-tof_smearing, tof_smearing, modules.size) if tof_smearing else np.zeros(modules.size)
        return cls(modules, thr.astype(np.float32), toa.astype(np.float32))

    def lookup(self, modules) -> np.ndarray:
        index = np.searchsorted(self.modules, np.asarray(modules, dtype=np.uint32))
        if index.size and (index.max(initial=0) >= self.modules.size
                           or (self.modules[np.minimum(index, self.modules.size - 1)] != modules).any()):
            raise ValueError("hit modules missing from the smearing table")
        return index

    def apply(self, modules, toa, threshold: float):
        """(smeared toa, per-hit threshold), float32, the sums done in float32 like the analyzer."""
        index = self.lookup(modules)
        toa = (np.asarray(toa, dtype=np.float32) + self.toa_offset[index]).astype(np.float32)
        thr = (np.float32(threshold) + self.threshold_offset[index]).astype(np.float32)
        return toa, thr

    def summary(self) -> dict:
        def stats(a):
            return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())} if a.size else {}
        return {"modules": int(self.modules.size), "threshold_offset": stats(self.threshold_offset),
                "toa_offset": stats(self.toa_offset)}
