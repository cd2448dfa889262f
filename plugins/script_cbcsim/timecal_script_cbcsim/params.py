"""The parameters of the cbcsim production script, shared by the plugin (planning) and the
step (running), so both coerce ``k=v`` the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from timecal_core.cms.cfg_parameters import check_offset, cms_parameters
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import Parameter

from .hits import REGION_WINDOWS
from .pulse import MODELS

SUBDETS = tuple(REGION_WINDOWS)
DELAY_RANGE = (0.0, 50.0)  # emulate mode, offset=-1: drawn uniformly here, rounded to 0.01
MAX_DELAYS = 100_000

# The PUCalibration_cfg.py options, from the core's one declaration (names, types, defaults,
# units, limits). The help of N, pileup and verbose says what they mean for the emulator.
_CMS = {p.name: p for p in cms_parameters("N", "pileup", "pt", "threshold", "thresholdsmearing",
                                          "tofsmearing", "mode", "subdet", "offset", "verbose")}
_CMS["N"] = replace(_CMS["N"], help="number of events (synthetic hits: spreads nhits over N events)")
_CMS["pileup"] = replace(_CMS["pileup"], help="mean number of pile-up interactions (synthetic hits: "
                                              "sets the signal / pile-up mixture)")
_CMS["offset"] = replace(_CMS["offset"], help="emulate mode: the delay (-1: drawn from seed)")
_CMS["verbose"] = replace(_CMS["verbose"], help="progress messages (0: quiet)")

PARAMETERS = (
    *_CMS.values(),
    Parameter("model", "str", "compat", "pulse model: compat (the deployed analyzer, bit for bit) or "
                                        "exact (continuous pulse)", choices=MODELS),
    Parameter("seed", "int", 1, "seed of the synthetic hits, the smearing and the emulate delay"),
    Parameter("offset_min", "float", 0.0, "first delay of the scan", unit="ns"),
    Parameter("offset_max", "float", 50.0, "scan while the delay is <= this", unit="ns"),
    Parameter("offset_step", "float", 0.1, "delay step of the scan", unit="ns"),
    Parameter("hits", "path", "", "sim-hit dump (ROOT, tree 'simhits'); empty: synthetic hits",
              in_dirname=False),
    Parameter("nhits", "int", 20_000, "synthetic hits generated before the selection (0: N events at "
                                      "their natural multiplicity)", minimum=0, work=True),
)


def check_values(values: Mapping[str, Sequence]) -> None:
    """The planner's check: ``values`` holds every parameter's distinct values; the grid is
    their cartesian product, so a rule between two parameters is checked on its extremes.
    Types, choices, minima and file existence are the core's (declared above)."""
    for n in values["N"]:
        if n < 1:
            raise UserError(f"parameter 'N' got {n!r}; allowed: a number of events >= 1")
    steps = values["offset_step"]
    for step in steps:
        if step <= 0:
            raise UserError(f"parameter 'offset_step' got {step!r}; allowed: > 0 ns")
    low, high = max(values["offset_min"]), min(values["offset_max"])
    if high < low:
        raise UserError(f"parameter 'offset_max' got {high!r}, below offset_min {low!r}; "
                        f"allowed: offset_max >= offset_min")
    span = max(values["offset_max"]) - min(values["offset_min"])
    if span / min(steps) > MAX_DELAYS:
        raise UserError(f"parameter 'offset_step' got {min(steps)!r}: more than {MAX_DELAYS} delays "
                        f"between offset_min and offset_max; allowed: a larger step")
    check_offset(values["offset"])


def check(params: Mapping) -> None:
    """The same rules for one complete parameter set (the step checks what it is given)."""
    check_values({name: (value,) for name, value in params.items()})
    for p in PARAMETERS:  # limits the core checks when planning, for direct invocations
        if p.minimum is not None and params[p.name] < p.minimum:
            raise UserError(f"parameter '{p.name}' got {params[p.name]!r}; allowed: >= {p.minimum:g}"
                            + (f" {p.unit}" if p.unit else ""))
    if params["hits"] and not Path(params["hits"]).expanduser().is_file():
        raise UserError(f"parameter 'hits': file '{params['hits']}' does not exist (give a sim-hit dump, "
                        "or leave it empty for synthetic hits)")


def draw_delay(seed: int) -> float:
    """The emulate-mode delay for offset=-1: uniform on the 0.01 ns grid of [0, 50)."""
    rng = np.random.default_rng([seed, 2])
    low, high = DELAY_RANGE
    return float(rng.integers(round(low * 100), round(high * 100))) / 100.0
