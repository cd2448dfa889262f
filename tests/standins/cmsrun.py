"""A stand-in for CMSSW's ``cmsRun``, because CMSSW cannot be installed on these machines.

It honours the command lines timecal generates: ``cmsRun PUCalibration_cfg.py k=v ...``
writes a raw ``BXHist..._raw.root`` (named as physics.md section 6 says, with toy contents
in the raw DQM layout) and ``cmsRun Harvester_cfg.py input=<raw>`` writes
``DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root`` in the harvested layout. Real ROOT
files, written with uproot. It prints its argv and the environment facts the tests check
(virtualenv variables, the variable set by the timerc init snippet) as one JSON line.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from timecal_core.cms.fast_root import put_named, write_histograms
from timecal_core.cms.harvested_layout import HARVESTED_PREFIX, BXHistograms, RAW_PREFIX, raw_name, scan_delays
from timecal_core.cms.readers import read_maps

STEP = 0.5  # a short toy scan: 0, 0.5, ... (with the delay-loop quirk of physics.md section 4)
DEFAULTS = {"N": 1, "pileup": 200, "pt": 2.0, "threshold": 5800.0, "thresholdsmearing": 0.0,
            "tofsmearing": 0.0, "mode": "scan", "subdet": "ALL", "offset": -1.0, "verbose": 0}


def toy_histograms(delays, n_hits, seed, step):
    rng = np.random.default_rng(seed)
    nd = len(delays)
    sampled = np.zeros((nd, 13), dtype=np.int64)
    sampled[:, 5] = rng.binomial(n_hits, 0.95, nd)
    sampled[:, 6] = rng.binomial(n_hits, 0.05, nd)
    latched = sampled.copy()
    attr = np.zeros((nd, 7), dtype=np.int64)
    attr[:, 2] = n_hits
    return BXHistograms(np.asarray(delays, dtype=float), sampled, latched, attr, attr.copy(), n_hits,
                               offset_step=step)


def production(cfg_args):
    params = dict(DEFAULTS)
    for item in cfg_args:
        key, _, value = item.partition("=")
        params[key] = value
    for key in ("N", "pileup", "verbose"):
        params[key] = int(params[key])
    for key in ("pt", "threshold", "thresholdsmearing", "tofsmearing", "offset"):
        params[key] = float(params[key])
    for key in ("HSfile", "PUfile"):
        if key in params and not Path(params[key]).is_file():
            print(f"stand-in cmsRun: {key} {params[key]!r} does not exist", file=sys.stderr)
            return 65
    if params["mode"] == "scan":
        delays, name = scan_delays(0.0, 2.0, STEP), raw_name(params)
    else:
        delay = params["offset"] if params["offset"] >= 0 else round(np.random.default_rng().uniform(0, 50), 2)
        delays, name = [delay], raw_name(params, delay)
    hists = toy_histograms(delays, 100 * params["N"], seed=int(params["threshold"]), step=STEP)
    write_histograms(Path(name), hists, harvested=False)
    return 0


def harvester(cfg_args):
    args = dict(a.partition("=")[::2] for a in cfg_args)
    raw = Path(args["input"])
    maps = read_maps(raw, prefix=RAW_PREFIX)
    n_hits = int(maps.hits_true["Sampled"][0, 0])
    hists = BXHistograms(maps.delays, maps.offset_scan["Sampled"].astype(np.int64),
                                maps.offset_scan["Latched"].astype(np.int64),
                                maps.attribution["Sampled"].astype(np.int64),
                                maps.attribution["Latched"].astype(np.int64), n_hits,
                                offset_step=STEP)
    def info(f):  # the analyzer's Info folder, as the DQM harvest stores scalar elements
        folder = f.mkdir(f"{HARVESTED_PREFIX}/Info")
        for element in ("<SmearingSeed>i=7</SmearingSeed>", "<SmearingKey>s=module</SmearingKey>"):
            put_named(folder, element, element)

    write_histograms(Path("DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root"), hists, also=info)
    return 0


def main(argv):
    print(json.dumps({"argv": argv, "VIRTUAL_ENV": os.environ.get("VIRTUAL_ENV"),
                      "TIMECAL_INIT_MARK": os.environ.get("TIMECAL_INIT_MARK")}), flush=True)
    if not argv:
        print("stand-in cmsRun: no configuration file given", file=sys.stderr)
        return 64
    cfg = Path(argv[0]).name
    if cfg == "PUCalibration_cfg.py":
        return production(argv[1:])
    if cfg == "Harvester_cfg.py":
        return harvester(argv[1:])
    print(f"stand-in cmsRun: unknown configuration {cfg}", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
