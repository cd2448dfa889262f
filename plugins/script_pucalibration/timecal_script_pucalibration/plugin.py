"""Registers ``pucalibration`` (alias ``PUCalibration_cfg.py``, the name users type).

The chain: ``cmsRun PUCalibration_cfg.py k=v...`` writes ``BXHist..._raw.root``;
``cmsRun Harvester_cfg.py input=<raw>`` writes the DQM file, renamed to the raw name with
``raw`` -> ``harvested``; the raw file is deleted. The core then stores the parameters in
the harvested file and writes ``params.json``. In emulate mode with ``offset=-1`` cmsRun
draws the delay itself, so the raw name is only known once it exists: the harvester
argument and the output are matched by pattern.
"""

from __future__ import annotations

from pathlib import Path

from timecal_core.cms.cfg_parameters import CMS_PARAMETERS, check_offset
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import ProductionScript, Step, TaskPlan, TaskRequest, hookimpl
from timecal_core.config.parameters import as_argv

PRODUCTION_CFG = "PUCalibration_cfg.py"
HARVESTER_CFG = "Harvester_cfg.py"
DQM_OUTPUT = "DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root"
# The cfg's VarParsing options, from the core's one declaration (checked against the cfg
# files by tests/test_cms_parameters.py).
PARAMETERS = CMS_PARAMETERS


def _cfg(request: TaskRequest, name: str) -> str:
    if request.cmssw_dir is None:
        raise UserError("timerc [paths] cmssw is not set: it must point to the directory holding "
                        f"{PRODUCTION_CFG} and {HARVESTER_CFG}")
    return str(Path(request.cmssw_dir) / name)


def raw_pattern(params) -> str:
    from timecal_core.cms.harvested_layout import raw_name

    if params["mode"] == "scan":
        return raw_name(params)
    if params["offset"] >= 0:
        return raw_name(params, params["offset"])
    return "BXHistEmulateDelay_*_raw.root"


def finalize(workdir: Path, layout: str | None = None) -> None:
    """DQM output -> ``<raw name with raw -> harvested>``; the raw file is removed. In the
    compact layout the harvested file is rewritten without its 1D histograms (the deployed
    analyzer always books them; the 2D maps hold the same numbers)."""
    from timecal_core.cms.compact import compact_file
    from timecal_core.cms.harvested_layout import COMPACT

    raws = sorted(workdir.glob("BXHist*_raw.root"))
    dqm = workdir / DQM_OUTPUT
    if len(raws) != 1 or not dqm.is_file():
        raise RuntimeError(f"expected one BXHist*_raw.root and {DQM_OUTPUT}, found "
                           f"{sorted(p.name for p in workdir.iterdir())}")
    harvested = workdir / raws[0].name.replace("raw", "harvested")
    dqm.rename(harvested)
    raws[0].unlink()
    if layout == COMPACT:
        compact_file(harvested)


def plan(request: TaskRequest) -> TaskPlan:
    params = dict(request.params)
    raw = raw_pattern(params)
    return TaskPlan(
        steps=(
            Step("PUCalibration", ("cmsRun", _cfg(request, PRODUCTION_CFG), *as_argv(params)), cmssw=True),
            Step("Harvester", ("cmsRun", _cfg(request, HARVESTER_CFG), f"input={{match:{raw}}}"), cmssw=True),
        ),
        output=raw.replace("raw", "harvested"),
        finalize=lambda workdir: finalize(workdir, request.layout),
    )


def preflight(timerc) -> None:
    cmssw = timerc.optional_path("cmssw")
    if cmssw is None:
        raise UserError(f"{timerc.path}: [paths] cmssw is not set; it must point to the directory "
                        f"holding {PRODUCTION_CFG} and {HARVESTER_CFG}")
    for cfg in (PRODUCTION_CFG, HARVESTER_CFG):
        if not (cmssw / cfg).is_file():
            raise UserError(f"{timerc.path}: [paths] cmssw = {cmssw} has no {cfg}")


def check(values) -> None:
    """Refused when planning (types, choices and minima are checked by the core)."""
    for n in values["N"]:
        if n < 1 and n != -1:
            raise UserError(f"parameter 'N' got {n!r}; allowed: a number of events >= 1, or -1 "
                            f"(every event of the input files)")
    check_offset(values["offset"])


def verify(output: Path) -> str | None:
    """A harvested file is a complete ROOT file holding the DQM folder (header and key list
    read, not the histograms)."""
    from timecal_core.cms.root_check import root_file_problem

    return root_file_problem(output, ("DQMData",))


@hookimpl
def timecal_scripts():
    yield ProductionScript(name="pucalibration", parameters=PARAMETERS, plan=plan,
                           aliases=(PRODUCTION_CFG,), preflight=preflight, check=check, cmssw=True,
                           verify=verify,
                           description="CMSSW PUCalibration_cfg.py + Harvester_cfg.py",
                           layouts=("full", "compact"))
