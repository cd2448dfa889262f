"""The parameters of the cbcsim production script, shared by the plugin (planning) and the
step (running), so both coerce ``k=v`` the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from timecal_core.errors import UserError
from timecal_core.hookspecs import Parameter

from .hits import REGION_WINDOWS
from .pulse import MODELS

SUBDETS = tuple(REGION_WINDOWS)
DELAY_RANGE = (0.0, 50.0)  # emulate mode, offset=-1: drawn uniformly here, rounded to 0.01

PARAMETERS = (
    Parameter("N", "int", 1, "number of events (synthetic hits: spreads nhits over N events)"),
    Parameter("pileup", "int", 200, "mean number of pile-up interactions (synthetic hits: sets the "
                                    "signal / pile-up mixture)"),
    Parameter("pt", "float", 2.0, "minimum track pT of the hits (GeV)"),
    Parameter("threshold", "float", 5800.0, "CBC threshold (electrons)"),
    Parameter("thresholdsmearing", "float", 0.0, "per-module threshold smearing, uniform +- (electrons)"),
    Parameter("tofsmearing", "float", 0.0, "per-module time-of-arrival smearing, uniform +- (ns)"),
    Parameter("mode", "str", "scan", "scan the delays, or emulate one delay", choices=("scan", "emulate")),
    Parameter("subdet", "str", "ALL", "detector region (physics.md section 1)", choices=SUBDETS),
    Parameter("offset", "float", -1.0, "emulate mode: the delay in ns (-1: drawn from seed)"),
    Parameter("verbose", "int", 0, "progress messages (0: quiet)"),
    Parameter("model", "str", "compat", "pulse model: compat (the deployed analyzer, bit for bit) or "
                                        "exact (continuous pulse)", choices=MODELS),
    Parameter("seed", "int", 1, "seed of the synthetic hits, the smearing and the emulate delay"),
    Parameter("offset_min", "float", 0.0, "first delay of the scan (ns)"),
    Parameter("offset_max", "float", 50.0, "scan while the delay is <= this (ns)"),
    Parameter("offset_step", "float", 0.1, "delay step of the scan (ns)"),
    Parameter("hits", "str", "", "sim-hit dump (ROOT, tree 'simhits'); empty: synthetic hits",
              in_dirname=False),
    Parameter("nhits", "int", 20_000, "synthetic hits generated before the selection (0: N events at "
                                      "their natural multiplicity)"),
)


def check(params) -> None:
    """Value checks beyond types/choices; one-line UserError naming the parameter."""
    if params["threshold"] <= 0:
        raise UserError(f"parameter 'threshold' must be > 0 electrons, got {params['threshold']}")
    for name in ("thresholdsmearing", "tofsmearing"):
        if params[name] < 0:
            raise UserError(f"parameter '{name}' must be >= 0, got {params[name]}")
    if params["offset_step"] <= 0:
        raise UserError(f"parameter 'offset_step' must be > 0 ns, got {params['offset_step']}")
    if params["offset_max"] < params["offset_min"]:
        raise UserError(f"parameter 'offset_max' ({params['offset_max']}) is below offset_min "
                        f"({params['offset_min']})")
    if (params["offset_max"] - params["offset_min"]) / params["offset_step"] > 100_000:
        raise UserError("offset_min/offset_max/offset_step give more than 100000 delays; use a larger step")
    if params["mode"] == "emulate" and params["offset"] < 0 and params["offset"] != -1:
        raise UserError(f"parameter 'offset' must be >= 0 ns, or -1 for a random delay, got {params['offset']}")
    if params["nhits"] < 0 or params["N"] < 1 or params["pileup"] < 0:
        raise UserError("parameters 'nhits' and 'pileup' must be >= 0 and 'N' >= 1, got "
                        f"nhits={params['nhits']} N={params['N']} pileup={params['pileup']}")
    if params["hits"] and not Path(params["hits"]).expanduser().is_file():
        raise UserError(f"parameter 'hits': file '{params['hits']}' does not exist (give a sim-hit dump, "
                        "or leave it empty for synthetic hits)")


def draw_delay(seed: int) -> float:
    """The emulate-mode delay for offset=-1: uniform on the 0.01 ns grid of [0, 50)."""
    rng = np.random.default_rng([seed, 2])
    low, high = DELAY_RANGE
    return float(rng.integers(round(low * 100), round(high * 100))) / 100.0
