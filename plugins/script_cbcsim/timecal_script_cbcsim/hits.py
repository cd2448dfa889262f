"""Sim hits as cbcsim consumes them (the columns of the sim-hit dump) and the selection of
physics.md §1, shared by the synthetic model and dump reading so both are cut identically."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

SUBDET_BARREL = 5  # DetId::subdetId() of the Outer Tracker barrel (TOB)
SUBDET_ENDCAP = 4  # ... and of its endcap disks (TID)

# r (cm) and |z| (cm) windows of the `subdet` parameter, bounds inclusive.
REGION_WINDOWS = {
    "ALL": (0.0, 120.0, 0.0, 280.0),
    "BLL": (20.0, 26.0, 0.0, 6.5),
    "BLH": (22.0, 30.0, 116.0, 122.0),
    "BHL": (108.0, 114.0, 0.0, 20.0),
    "BHH": (108.0, 114.0, 80.0, 120.0),
    "ELL": (22.0, 28.0, 128.0, 131.0),
    "ELH": (32.0, 50.5, 260.0, 270.0),
    "EHL": (93.0, 112.0, 128.0, 131.0),
    "EHH": (92.0, 112.0, 262.0, 268.0),
}
MIN_ABS_DZ = 0.01  # cm: shorter hits are delta rays


@dataclass
class SimHits:
    """One array per dump branch (same names and dtypes as the ``simhits`` tree)."""

    charge: np.ndarray  # float32, electrons
    toa: np.ndarray  # float32, ns
    module: np.ndarray  # uint32, module id (DetId raw id in a CMSSW dump)
    r: np.ndarray  # float32, cm
    z: np.ndarray  # float32, cm
    pt: np.ndarray  # float32, GeV
    bx: np.ndarray  # int32, bunch crossing of the hit's interaction
    track: np.ndarray  # int32, track id
    dz: np.ndarray  # float32, z_entry - z_exit, cm
    subdet: np.ndarray  # int32, 5 barrel / 4 endcap

    DTYPES = {"charge": "f4", "toa": "f4", "module": "u4", "r": "f4", "z": "f4", "pt": "f4",
              "bx": "i4", "track": "i4", "dz": "f4", "subdet": "i4"}

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_arrays(cls, arrays) -> "SimHits":
        return cls(**{name: np.asarray(arrays[name], dtype=cls.DTYPES[name]) for name in cls.names()})

    def __len__(self) -> int:
        return int(self.charge.size)

    def take(self, mask) -> "SimHits":
        return SimHits(**{name: getattr(self, name)[mask] for name in self.names()})

    @staticmethod
    def concatenate(parts: list["SimHits"]) -> "SimHits":
        return SimHits(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in SimHits.names()})


def selection(hits: SimHits, pt: float, subdet: str) -> np.ndarray:
    """physics.md §1: in-time bx, track id > 0, pT >= cut, |dz| > 0.01 cm, region window.

    Comparisons are in float64 like the analyzer's (a float branch against a double cut):
    numpy would otherwise round the cut to float32 and move hits at the boundary.
    """
    r_min, r_max, z_min, z_max = REGION_WINDOWS[subdet]
    r = hits.r.astype(np.float64)
    abs_z = np.abs(hits.z.astype(np.float64))
    return ((hits.bx == 0) & (hits.track > 0) & ~(hits.pt.astype(np.float64) < pt)
            & (np.abs(hits.dz.astype(np.float64)) > MIN_ABS_DZ)
            & (r >= r_min) & (r <= r_max) & (abs_z >= z_min) & (abs_z <= z_max))
