"""Synthetic sim hits: a documented *parametric* model, NOT a detector simulation.

It exists so that cbcsim runs (and can be tried, tested and demonstrated) without CMSSW or
a sim-hit dump. Every number below is a knob of :class:`SyntheticModel`, chosen so the
distributions look like the Outer Tracker sim hits the analyzer sees, not derived from a
simulation:

* **Events.** ``N`` events; each has on average ``signal_hits`` hits from the hard
  interaction and ``pileup_hits`` hits per pile-up interaction, ``pileup`` interactions.
  ``nhits`` > 0 fixes the total number of generated hits (the
  signal / pile-up mixture still set by ``signal_hits : pileup * pileup_hits``); ``nhits = 0``
  draws ``N * (signal_hits + pileup * pileup_hits)`` hits (Poisson).
  A fraction ``out_of_time`` of pile-up hits belongs to another bunch crossing (bx != 0).
* **pT** (GeV): signal tracks follow a power law above ``signal_pt_min`` (index
  ``signal_pt_index``); pile-up tracks an exponential of mean ``pileup_pt_mean`` above
  ``pileup_pt_min``, so the ``pt`` cut removes most pile-up hits.
* **Charge** (electrons): Moyal (Landau-like) with most probable value ``charge_mpv`` and
  width ``charge_width``; a fraction ``shared_fraction`` keeps only U(``shared_min``, 1) of
  it (charge shared with a neighbouring strip), the source of low-charge hits.
* **Time of arrival** (ns): Gaussian core (``toa_sigma``) plus a late tail (exponential,
  ``late_scale``) of probability ``late_fraction`` (x ``low_pt_late_boost`` below 1 GeV: slow
  and looping particles) and an early Gaussian tail (``early_fraction``, ``early_sigma``).
* **Positions**: barrel layers at ``barrel_radii`` with |z| uniform up to ``barrel_half_length``,
  endcap disks at ``disk_z`` with r uniform in ``disk_r``; every ``subdet`` window of
  physics.md §1 receives hits (``subdet`` 5 = barrel, 4 = endcap, as DetId::subdetId()
  in a dump). Modules: barrel ladders (``barrel_module_length`` in z,
  ``modules_per_ring`` in phi) and disk rings (``disk_ring_width`` in r), one id each.
* **Rejected hits**: ``untracked_fraction`` with track id 0 and ``delta_ray_fraction`` with
  |dz| <= 0.01 cm, so the selection of physics.md §1 has something to reject.

Defaults give an in-time (bx = 0) Sampled efficiency of about 98 % at threshold 5800 e and
delay 0, like the test vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .hits import SUBDET_BARREL, SUBDET_ENDCAP, SimHits


@dataclass(frozen=True)
class SyntheticModel:
    N: int = 1
    pileup: int = 200
    nhits: int = 20_000
    signal_hits: float = 400.0
    pileup_hits: float = 60.0
    out_of_time: float = 0.05
    signal_pt_min: float = 1.0
    signal_pt_index: float = 2.5
    pileup_pt_min: float = 0.3
    pileup_pt_mean: float = 0.6
    charge_mpv: float = 22_000.0
    charge_width: float = 2_500.0
    shared_fraction: float = 0.05
    shared_min: float = 0.05
    toa_sigma: float = 1.1
    late_fraction: float = 0.03
    low_pt_late_boost: float = 3.0
    late_scale: float = 12.0
    early_fraction: float = 0.003
    early_sigma: float = 5.0
    barrel_fraction: float = 0.6
    barrel_radii: tuple = (23.0, 36.0, 51.0, 68.0, 86.0, 110.0)
    barrel_half_length: float = 120.0
    barrel_module_length: float = 5.0
    disk_z: tuple = (129.5, 155.0, 185.0, 220.0, 265.0)
    disk_r: tuple = (22.0, 112.0)
    disk_ring_width: float = 5.0
    modules_per_ring: int = 40
    radial_jitter: float = 1.0
    disk_jitter: float = 0.7
    untracked_fraction: float = 0.01
    delta_ray_fraction: float = 0.02

    def as_dict(self) -> dict:
        return asdict(self)


def _means(model: SyntheticModel) -> tuple[float, float]:
    return model.N * model.signal_hits, model.N * model.pileup * model.pileup_hits


def generate(model: SyntheticModel, rng: np.random.Generator, n: int | None = None) -> SimHits:
    """Generated hits (before the selection of physics.md §1): ``n`` of them, by default
    ``model.nhits`` (or a Poisson number of N events' worth when that is 0)."""
    signal_mean, pileup_mean = _means(model)
    total = signal_mean + pileup_mean
    if n is None:
        n = model.nhits if model.nhits > 0 else int(rng.poisson(total))
    is_signal = rng.random(n) < (signal_mean / total if total > 0 else 1.0)

    pt = np.where(is_signal,
                  model.signal_pt_min * rng.random(n) ** (-1.0 / (model.signal_pt_index - 1.0)),
                  model.pileup_pt_min + rng.exponential(model.pileup_pt_mean, n))
    bx = np.where(~is_signal & (rng.random(n) < model.out_of_time), rng.choice([-2, -1, 1, 2], n), 0)

    moyal = -np.log(rng.standard_normal(n) ** 2)  # Moyal(0, 1): the mode is at 0
    charge = model.charge_mpv + model.charge_width * moyal
    shared = rng.random(n) < model.shared_fraction
    charge = np.where(shared, charge * rng.uniform(model.shared_min, 1.0, n), charge)
    charge = np.maximum(charge, 1.0)

    late_p = model.late_fraction * np.where(pt < 1.0, model.low_pt_late_boost, 1.0)
    kind = rng.random(n)
    toa = rng.normal(0.0, model.toa_sigma, n)
    late = kind < late_p
    early = (kind >= late_p) & (kind < late_p + model.early_fraction)
    toa = np.where(late, toa + rng.exponential(model.late_scale, n), toa)
    toa = np.where(early, rng.normal(0.0, model.early_sigma, n), toa)

    r, z, module, barrel = _positions(model, rng, n)
    dz = np.abs(rng.normal(0.0, 0.08, n)) + 0.012
    dz = np.where(rng.random(n) < model.delta_ray_fraction, rng.uniform(0.0, 0.01, n), dz)
    dz = dz * rng.choice([-1.0, 1.0], n)
    track = np.where(rng.random(n) < model.untracked_fraction, 0, 1 + rng.integers(0, 10_000, n))
    subdet = np.where(barrel, SUBDET_BARREL, SUBDET_ENDCAP)
    return SimHits(charge=charge.astype(np.float32), toa=toa.astype(np.float32), module=module,
                   r=r.astype(np.float32), z=z.astype(np.float32), pt=pt.astype(np.float32),
                   bx=bx.astype(np.int32), track=track.astype(np.int32), dz=dz.astype(np.float32),
                   subdet=subdet.astype(np.int32))


def generate_chunks(model: SyntheticModel, seed: int, chunk_size: int = 1_000_000):
    """A job's synthetic hits in chunks of at most ``chunk_size`` (bounded memory for 10^7
    hits). Chunk i is drawn from ``default_rng([seed, 1, i])``: the sample depends only on
    the model and the seed, and iterating twice gives the same hits."""
    total = model.nhits if model.nhits > 0 else int(np.random.default_rng([seed, 1]).poisson(sum(_means(model))))
    for i, start in enumerate(range(0, total, chunk_size)):
        yield generate(model, np.random.default_rng([seed, 1, i]), n=min(chunk_size, total - start))


def _positions(model: SyntheticModel, rng: np.random.Generator, n: int):
    barrel = rng.random(n) < model.barrel_fraction
    layer = rng.integers(0, len(model.barrel_radii), n)
    disk = rng.integers(0, len(model.disk_z), n)
    side = rng.choice([-1.0, 1.0], n)
    phi_bin = rng.integers(0, model.modules_per_ring, n)
    r_barrel = np.asarray(model.barrel_radii)[layer] + rng.uniform(-model.radial_jitter, model.radial_jitter, n)
    z_barrel = side * rng.uniform(0.0, model.barrel_half_length, n)
    r_disk = rng.uniform(model.disk_r[0], model.disk_r[1], n)
    z_disk = side * (np.asarray(model.disk_z)[disk] + rng.uniform(-model.disk_jitter, model.disk_jitter, n))
    r = np.where(barrel, r_barrel, r_disk)
    z = np.where(barrel, z_barrel, z_disk)
    # Module id: detector part, layer/disk (signed by side), ring or z segment, phi segment.
    z_segment = np.floor((z_barrel + model.barrel_half_length) / model.barrel_module_length).astype(np.int64)
    ring = np.floor((r_disk - model.disk_r[0]) / model.disk_ring_width).astype(np.int64)
    part = np.where(barrel, 1, 2)
    index = np.where(barrel, layer, disk * 2 + (side > 0))
    segment = np.where(barrel, z_segment, ring)
    module = ((part * 100 + index) * 1000 + segment) * 1000 + phi_bin
    return r, z, module.astype(np.uint32), barrel
