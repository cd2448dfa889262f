"""The CMS scan parameters are declared once (timecal_core/cms/cfg_parameters.py) and that one
declaration agrees with the VarParsing options of the cfg files that cmsRun really parses.

The cfg files are read with ``ast`` (CMSSW cannot be imported here): every
``options.register(name, default, multiplicity, VarParsing.varType.X, help)`` is compared
with the declaration: same type, default and help. An option a cfg registers that is not
a scan parameter must be listed in CFG_ONLY, so a new scan option cannot be forgotten.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from timecal_core.cms.cfg_parameters import BY_NAME, CMS_PARAMETERS, SUBDETS
from timecal_core.contract.plugins import get_registry

CFG_DIR = Path(__file__).resolve().parents[1] / "cmssw" / "SiPhase2TimingCalibration" / "test"
CFG_FILES = sorted(CFG_DIR.glob("*_cfg.py"))

#: Options of the cfg files that are not scan parameters (the lead extends this list when
#: cfg-only options such as geometry/era/globaltag/seed are merged).
# smearingseed, smearingkey and only2s change the physics: declaring them (so grids can scan
# them and task ids include them) is the lead's decision; until then cmsRun uses their defaults.
_SETUP = {"geometry", "era", "globaltag"}
_SMEARING = {"smearingseed", "smearingkey", "only2s"}
CFG_ONLY = {
    "Harvester_cfg.py": {"input"},
    "PUCalibration_cfg.py": _SETUP | _SMEARING,
    "PythiaGunCalibration_cfg.py": {"gunptmin", "gunptmax"} | _SETUP | _SMEARING,
    "SimHitDump_cfg.py": {"output"} | _SETUP,
}
#: A cfg whose default or help differs on purpose: (file, option) -> what it says.
CFG_OWN = {
    ("PythiaGunCalibration_cfg.py", "N"): {"default": 100, "help": "Number of gun events"},
}
VARTYPES = {"int": "int", "float": "float", "string": "str", "bool": "bool"}


def registered_options(path: Path) -> dict[str, dict]:
    """``options.register(...)`` calls of a cfg file: name -> type, default, help."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register"):
            name, default, _multiplicity, vartype, *rest = node.args
            assert isinstance(vartype, ast.Attribute), ast.dump(vartype)
            out[ast.literal_eval(name)] = {"type": vartype.attr, "default": ast.literal_eval(default),
                                           "help": ast.literal_eval(rest[0]) if rest else ""}
    return out


def expected_help(param) -> str:
    assert param.unit in param.help, (param.name, "the help names the unit")
    return param.help


def test_the_cfg_files_are_found_and_parsed():
    assert {p.name for p in CFG_FILES} >= {"PUCalibration_cfg.py", "Harvester_cfg.py"}
    assert set(registered_options(CFG_DIR / "PUCalibration_cfg.py")) - CFG_ONLY["PUCalibration_cfg.py"] \
        == set(BY_NAME)


@pytest.mark.parametrize("cfg", CFG_FILES, ids=lambda p: p.name)
def test_every_cfg_option_agrees_with_the_declaration(cfg):
    for name, option in registered_options(cfg).items():
        if name in CFG_ONLY.get(cfg.name, set()):
            continue
        assert name in BY_NAME, (f"{cfg.name} registers '{name}', which is neither declared in "
                                 f"timecal_core/cms/cfg_parameters.py nor listed in CFG_ONLY")
        param = BY_NAME[name]
        own = CFG_OWN.get((cfg.name, name), {})
        want_type = "str" if param.type == "path" else param.type
        assert VARTYPES[option["type"]] == want_type, (cfg.name, name, option["type"], param.type)
        default = "" if param.required else param.default
        assert option["default"] == own.get("default", default), (cfg.name, name, option["default"])
        assert type(option["default"]) is type(own.get("default", default)), (cfg.name, name)
        assert option["help"] == own.get("help", expected_help(param)), (cfg.name, name)


def test_the_cfg_only_list_names_options_that_exist():
    for name, options in CFG_ONLY.items():
        assert options <= set(registered_options(CFG_DIR / name)), name


def test_both_scripts_take_their_cms_parameters_from_the_declaration():
    registry = get_registry()
    pucal = registry.script("pucalibration").item
    assert pucal.parameters == CMS_PARAMETERS
    cbcsim = {p.name: p for p in registry.script("cbcsim").item.parameters}
    for param in CMS_PARAMETERS:
        if param.name in ("HSfile", "PUfile"):
            assert param.name not in cbcsim  # the emulator reads a sim-hit dump instead
            continue
        mine = cbcsim[param.name]  # only the help may say what it means for the emulator
        assert replace(mine, help=param.help) == param, param.name
    from timecal_script_cbcsim.hits import REGION_WINDOWS

    assert tuple(REGION_WINDOWS) == SUBDETS


def test_the_drift_check_fails_when_a_copy_drifts(tmp_path):
    """The test above would catch the old "time-of-arrival" / "time-of-flight" drift."""
    text = (CFG_DIR / "PUCalibration_cfg.py").read_text().replace("time-of-flight", "time-of-arrival")
    drifted = tmp_path / "PUCalibration_cfg.py"
    drifted.write_text(text)
    with pytest.raises(AssertionError):
        test_every_cfg_option_agrees_with_the_declaration(drifted)
