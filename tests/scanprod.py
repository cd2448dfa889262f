"""Small harvested productions for the plotScan/observables tests and benchmark.

Files are real ROOT files written by ``layout.write_histograms`` from the CBC emulator
(``timecal_script_cbcsim.detection.emulate``, the ``compat`` model) run on the 1,000 hits
of ``tests/data/cbc/hits_1000.npz``; threshold smearing draws one threshold per
hit (as if each hit sat on its own module), so every grid point has its own curves.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import BXHistograms, harvested_name, scan_delays

TESTVECTORS = Path(__file__).resolve().parent / "data" / "cbc"
BASE_PARAMS = {"subdet": "ALL", "N": 1000, "pileup": 0, "pt": 2.0, "threshold": 5800.0,
               "thresholdsmearing": 0.0, "tofsmearing": 0.0}


def emulated_histograms(threshold: float, every: int = 1, smearing: float = 0.0, seed: int = 0) -> BXHistograms:
    """The emulator's histograms for the test-vector hits; ``every`` keeps one scan delay in
    ``every`` (smaller files, step 0.1 * every)."""
    from timecal_script_cbcsim.detection import emulate

    hits = np.load(TESTVECTORS / "hits_1000.npz")
    rng = np.random.default_rng(seed)
    thresholds = threshold + rng.uniform(-smearing, smearing, hits["charge"].size)
    return emulate(hits["charge"], hits["toa"], thresholds.astype(np.float32), scan_delays()[::every],
                   model="compat", offset_step=0.1 * every)


def make_production(root: Path, grid: dict[str, list], every: int = 10, with_1d: bool = True) -> Path:
    """A production directory as BXRun leaves it: results/<taskdir>/{params.json, file, task.log}."""
    names = list(grid)
    for i, values in enumerate(itertools.product(*(grid[n] for n in names))):
        params = dict(BASE_PARAMS, **dict(zip(names, values)))
        hists = emulated_histograms(float(params["threshold"]), every, float(params["thresholdsmearing"]), seed=i)
        taskdir = root / "results" / f"task{i:03d}__{i:010x}"
        taskdir.mkdir(parents=True)
        output = harvested_name(params)
        write_histograms(taskdir / output, hists, params, harvested=True, with_1d=with_1d)
        (taskdir / "task.log").write_text("written by tests/scanprod.py\n")
        (taskdir / "params.json").write_text(json.dumps({"task_id": f"{i:010x}", "params": params, "output": output}))
    return root
