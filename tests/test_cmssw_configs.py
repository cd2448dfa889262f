"""The CMSSW configuration files of cmssw/SiPhase2TimingCalibration.

CMSSW cannot be installed here, so the cfg/cfi files are executed against the stand-in of
``FWCore.ParameterSet.Config``/``VarParsing`` in tests/helpers/cmssw_standin.py: what they
compute (option defaults, output names, the analyzer parameters) is checked, and the
parameter names the cfi sets are checked against those the C++ plugin reads. The stand-in
simulates a CMSSW_12_5 release (``2026`` geometry names, D88) and a current one (``Run4``
names, no D88), so every cfg is loaded under both naming schemes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.cmssw_standin import CmsRunError, check_consumed_from_mixing, run_cfg  # tests/ is on sys.path
from timecal_core.cms.harvested_layout import raw_name

PACKAGE = Path(__file__).resolve().parents[1] / "cmssw" / "SiPhase2TimingCalibration"
CFG_DIR = PACKAGE / "test"
PYTHON_FILES = sorted([*CFG_DIR.glob("*_cfg.py"), *(PACKAGE / "python").glob("*.py")])

# The seed's PUCalibration_cfg.py options and defaults (what users type today).
SEED_DEFAULTS = {"N": 1, "pileup": 200, "pt": 2.0, "threshold": 5800.0, "thresholdsmearing": 0.0,
                 "tofsmearing": 0.0, "mode": "scan", "subdet": "ALL", "offset": -1.0, "verbose": 0,
                 "HSfile": "", "PUfile": ""}


@pytest.fixture
def file_lists(tmp_path):
    hs, pu = tmp_path / "hs.txt", tmp_path / "pu.txt"
    hs.write_text("/data/ttbar_1.root\n\nfile:/data/ttbar_2.root\n")
    pu.write_text("/data/minbias.root\n")
    return [f"HSfile={hs}", f"PUfile={pu}"]


def test_expected_files_exist():
    names = {p.name for p in PYTHON_FILES}
    assert names == {"PUCalibration_cfg.py", "PythiaGunCalibration_cfg.py", "Harvester_cfg.py",
                     "SimHitDump_cfg.py", "Phase2TrackerBXHistogram_cfi.py", "releaseConditions.py"}


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: p.name)
def test_python_file_compiles(path):
    compile(path.read_text(), str(path), "exec")


def test_pucalibration_defaults_are_the_seed_ones(file_lists, tmp_path):
    ns = run_cfg(CFG_DIR / "PUCalibration_cfg.py", file_lists, cwd=tmp_path)
    defaults = ns["options"].defaults()
    for name, value in SEED_DEFAULTS.items():
        if name in ("HSfile", "PUfile"):
            continue
        assert defaults[name] == value and type(defaults[name]) is type(value), name
    assert ns["filename"] == raw_name(SEED_DEFAULTS)


def test_pucalibration_requires_the_file_lists(tmp_path):
    """With no file lists the cfg must stop with a message naming the option."""
    with pytest.raises(RuntimeError, match="HSfile"):
        run_cfg(CFG_DIR / "PUCalibration_cfg.py", [], cwd=tmp_path)


SCAN_POINTS = [
    {"threshold": 6000.0, "pt": 0.0, "N": 10, "pileup": 0},
    {"threshold": 5800.7, "thresholdsmearing": 250.0, "tofsmearing": 1.5, "subdet": "BHH"},
    {"threshold": 4000.0, "pt": 2.5, "subdet": "EHL", "N": 100, "pileup": 140},
]


@pytest.mark.parametrize("point", SCAN_POINTS)
def test_pucalibration_scan_file_name_follows_the_layout(point, file_lists, tmp_path):
    args = [f"{k}={v}" for k, v in point.items()]
    ns = run_cfg(CFG_DIR / "PUCalibration_cfg.py", [*args, *file_lists], cwd=tmp_path)
    params = {**SEED_DEFAULTS, **point}
    assert ns["filename"] == raw_name(params)
    calib = ns["process"].timeCalib
    assert calib.ThresholdInElectrons_Barrel.value() == calib.ThresholdInElectrons_Endcap.value() == params["threshold"]
    assert calib.ThresholdSmearing_Barrel.value() == params["thresholdsmearing"]
    assert calib.TOFSmearing.value() == params["tofsmearing"]
    assert calib.PTCut.value() == params["pt"]
    assert calib.Subdetector.value() == params["subdet"]
    assert calib.UseMixing.value() is True
    assert ns["process"].DQMoutput.fileName.value() == "file:" + raw_name(params)
    assert ns["process"].maxEvents.input.value() == params["N"]
    assert list(ns["process"].source.fileNames) == ["file:/data/ttbar_1.root", "file:/data/ttbar_2.root"]


def test_pucalibration_emulate_with_a_given_delay(file_lists, tmp_path):
    ns = run_cfg(CFG_DIR / "PUCalibration_cfg.py", ["mode=emulate", "offset=12.345", *file_lists], cwd=tmp_path)
    params = {**SEED_DEFAULTS, "mode": "emulate"}
    assert ns["filename"] == raw_name(params, 12.35) == raw_name(params, 12.345)
    assert ns["process"].timeCalib.OffsetEmulate.value() == 12.35
    assert ns["process"].timeCalib.Mode.value() == "emulate"


def test_pucalibration_emulate_draws_and_records_the_delay(file_lists, tmp_path):
    for _ in range(5):
        ns = run_cfg(CFG_DIR / "PUCalibration_cfg.py", ["mode=emulate", *file_lists], cwd=tmp_path)
        delay = ns["process"].timeCalib.OffsetEmulate.value()
        assert 0.0 <= delay < 50.0 and round(delay, 2) == delay
        assert ns["filename"] == raw_name({**SEED_DEFAULTS, "mode": "emulate"}, delay)


@pytest.mark.parametrize("args, message", [
    (["mode=fast"], "mode"), (["subdet=XYZ"], "subdet"), (["thresh=5"], "unknown option"),
    (["N=many"], "expects int"), (["mode=emulate", "offset=-3"], "offset"), (["verbose=4"], "verbose=4"),
])
def test_pucalibration_rejects_bad_options(args, message, file_lists, tmp_path):
    with pytest.raises(RuntimeError, match=message):
        run_cfg(CFG_DIR / "PUCalibration_cfg.py", [*args, *file_lists], cwd=tmp_path)


def test_pythia_gun_uses_signal_hits_and_the_same_naming(tmp_path):
    ns = run_cfg(CFG_DIR / "PythiaGunCalibration_cfg.py", ["N=5", "threshold=7000"], cwd=tmp_path)
    assert ns["filename"] == raw_name({**SEED_DEFAULTS, "N": 5, "pileup": 0, "threshold": 7000.0})
    process = ns["process"]
    assert process.timeCalib.UseMixing.value() is False
    assert process.source.type_() == "EmptySource"
    for path in process.paths.values():
        assert path.items[0] is process.ProductionFilterSequence


def test_harvester_reads_the_raw_file_and_names_the_dqm_output(tmp_path):
    ns = run_cfg(CFG_DIR / "Harvester_cfg.py", ["input=BXHistScan_x_raw.root"], cwd=tmp_path)
    process = ns["process"]
    assert process.source.type_() == "DQMRootSource"
    assert list(process.source.fileNames) == ["file:BXHistScan_x_raw.root"]
    # DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root: run 1 and this workflow.
    assert process.dqmSaver.workflow == "/Global/CMSSW_X_Y_Z/RECO"
    with pytest.raises(RuntimeError, match="input="):
        run_cfg(CFG_DIR / "Harvester_cfg.py", [], cwd=tmp_path)


def test_simhit_dump_config(file_lists, tmp_path):
    ns = run_cfg(CFG_DIR / "SimHitDump_cfg.py", ["N=3", "pileup=140", *file_lists], cwd=tmp_path)
    process = ns["process"]
    assert process.TFileService.fileName.value() == "SimHitDump_N_3_pileup_140.root"
    assert process.simHitDumper.type_() == "SimHitDumper"
    ns = run_cfg(CFG_DIR / "SimHitDump_cfg.py", ["output=dump.root", *file_lists], cwd=tmp_path)
    assert ns["process"].TFileService.fileName.value() == "dump.root"


def _parameters_read_by(*sources: Path) -> set[str]:
    return {name for source in sources
            for name in re.findall(r'getParameter<.*?>\("(\w+)"\)', source.read_text())}


@pytest.mark.parametrize("plugin, module", [("Phase2TrackerBXHistogram", "timeCalib"),
                                            ("SimHitDumper", "simHitDumper")])
def test_cfi_parameters_are_those_the_plugin_reads(plugin, module, file_lists, tmp_path):
    cfg = "PUCalibration_cfg.py" if module == "timeCalib" else "SimHitDump_cfg.py"
    ns = run_cfg(CFG_DIR / cfg, file_lists, cwd=tmp_path)
    configured = set(getattr(ns["process"], module).parameterNames_())
    plugins = PACKAGE / "plugins"
    assert configured == _parameters_read_by(plugins / f"{plugin}.cc", plugins / "OuterTrackerSimHits.h")


# --------------------------------------------------------------------------- releases
# What each cfg loads, per simulated release (tests/helpers/cmssw_standin.py RELEASES): the
# 2026 names with D88 (12_5 .. 14_0) and the Run4 names without D88 (>= the 14_1 cycle).
GEOMETRY_DEFAULTS = {
    "CMSSW_12_5_0": ("2026D88", "Phase2C17I13M9", "auto:phase2_realistic_T21"),
    "CMSSW_15_0_0": ("Run4D110", "Phase2C17I13M9", "auto:phase2_realistic_T33"),
}
GEOMETRY_CFGS = {"PUCalibration_cfg.py": ("Reco",), "PythiaGunCalibration_cfg.py": ("Reco", ""),
                 "SimHitDump_cfg.py": ("Reco",)}


def input_args(cfg: str, file_lists: list[str]) -> list[str]:
    """The input options each cfg needs (the gun generates its events)."""
    return {"Harvester_cfg.py": ["input=BXHistScan_x_raw.root"], "PythiaGunCalibration_cfg.py": []}.get(cfg, file_lists)


def geometry_loaded(process) -> list[str]:
    return [f for f in process._loaded if f.startswith("Configuration.Geometry.")]


@pytest.mark.parametrize("release", sorted(GEOMETRY_DEFAULTS))
@pytest.mark.parametrize("cfg", ["PUCalibration_cfg.py", "PythiaGunCalibration_cfg.py", "SimHitDump_cfg.py",
                                 "Harvester_cfg.py"])
def test_every_cfg_loads_in_both_naming_schemes(cfg, release, file_lists, tmp_path):
    ns = run_cfg(CFG_DIR / cfg, input_args(cfg, file_lists), cwd=tmp_path, release=release)
    if cfg not in GEOMETRY_CFGS:
        return  # the harvester reads DQM histograms: no geometry
    geometry, era, globaltag = GEOMETRY_DEFAULTS[release]
    process = ns["process"]
    assert geometry_loaded(process) == [f"Configuration.Geometry.GeometryExtended{geometry}{kind}_cff"
                                        for kind in GEOMETRY_CFGS[cfg]]
    assert ns["era_name"] == era and ns["era"].name == era
    assert process.GlobalTag.globaltag == globaltag


@pytest.mark.parametrize("release, geometry, era, globaltag", [
    ("CMSSW_12_5_0", "2026D86", "Phase2C17I13M9", "auto:phase2_realistic_T21"),
    ("CMSSW_15_0_0", "Run4D104", "Phase2C22I13M9", "auto:phase2_realistic_T33"),
])
def test_explicit_geometry_takes_the_release_era_and_global_tag(release, geometry, era, globaltag, file_lists,
                                                                tmp_path):
    ns = run_cfg(CFG_DIR / "PUCalibration_cfg.py", [f"geometry={geometry}", *file_lists], cwd=tmp_path,
                 release=release)
    assert geometry_loaded(ns["process"]) == [f"Configuration.Geometry.GeometryExtended{geometry}Reco_cff"]
    assert ns["era_name"] == era and ns["process"].GlobalTag.globaltag == globaltag


def test_era_and_global_tag_can_be_given(file_lists, tmp_path):
    ns = run_cfg(CFG_DIR / "SimHitDump_cfg.py", ["era=Phase2C22I13M9", "globaltag=141X_mcRun4_realistic_v3",
                                                 *file_lists], cwd=tmp_path, release="CMSSW_15_0_0")
    assert ns["era_name"] == "Phase2C22I13M9"
    assert ns["process"].GlobalTag.globaltag == "141X_mcRun4_realistic_v3"


@pytest.mark.parametrize("cfg", sorted(GEOMETRY_CFGS))
@pytest.mark.parametrize("release, args, words", [
    ("CMSSW_15_0_0", ["geometry=2026D88"],
     ["geometry=2026D88", "Configuration/Geometry/python/GeometryExtended2026D88Reco_cff.py", "CMSSW_15_0_0",
      "default here: Run4D110"]),
    ("CMSSW_12_5_0", ["geometry=Run4D110"],
     ["geometry=Run4D110", "GeometryExtendedRun4D110Reco_cff.py", "CMSSW_12_5_0", "default here: 2026D88"]),
    ("CMSSW_12_5_0", ["geometry=GeometryExtended2026D88Reco_cff"], ["geometry=GeometryExtended2026D88Reco_cff",
                                                                     "scenario only"]),
    ("CMSSW_15_0_0", ["era=Phase2C99"], ["era=Phase2C99", "Configuration.Eras.Era_Phase2C99_cff", "CMSSW_15_0_0"]),
])
def test_a_missing_geometry_or_era_is_rejected_in_one_line(cfg, release, args, words, file_lists, tmp_path):
    with pytest.raises(RuntimeError) as error:
        run_cfg(CFG_DIR / cfg, [*args, *input_args(cfg, file_lists)], cwd=tmp_path, release=release)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("cfg", ["PUCalibration_cfg.py", "PythiaGunCalibration_cfg.py"])
def test_smearing_options(cfg, file_lists, tmp_path):
    args = input_args(cfg, file_lists)
    calib = run_cfg(CFG_DIR / cfg, args, cwd=tmp_path)["process"].timeCalib
    assert 1 <= calib.SmearingSeed.value() < 2**32  # drawn, and recorded by the analyzer
    assert calib.SmearingKey.value() == "module" and calib.Only2SModules.value() is False
    calib = run_cfg(CFG_DIR / cfg, ["smearingseed=42", "smearingkey=sensor", "only2s=True", *args],
                    cwd=tmp_path)["process"].timeCalib
    assert (calib.SmearingSeed.value(), calib.SmearingKey.value(), calib.Only2SModules.value()) == (42, "sensor", True)
    process = run_cfg(CFG_DIR / cfg, args, cwd=tmp_path)["process"]
    assert "timeCalib" not in vars(process.RandomNumberGeneratorService)  # no engine needed any more
    for bad, word in [("smearingkey=stack", "smearingkey=stack"), ("smearingseed=-1", "smearingseed=-1"),
                      (f"smearingseed={2**32}", "smearingseed=")]:
        with pytest.raises(RuntimeError, match=word):
            run_cfg(CFG_DIR / cfg, [bad, *args], cwd=tmp_path)


# --------------------------------------------------------------------------- start-up checks
# cmsRun processes every EDAlias of the process while it builds the schedule
# (FWCore/Framework/src/processEDAliases.cc); the stand-in does the same in run_cfg.
MIXING_CFGS = ["PUCalibration_cfg.py", "SimHitDump_cfg.py"]
ALIAS_DELETION = "for a in process.aliases: delattr(process, a)"


@pytest.mark.parametrize("cfg", MIXING_CFGS)
def test_cfg_empties_the_digitizers_and_deletes_their_aliases(cfg, file_lists, tmp_path):
    process = run_cfg(CFG_DIR / cfg, file_lists, cwd=tmp_path)["process"]
    assert process.mix.digitizers.parameterNames_() == []
    assert process.aliases == {}


@pytest.mark.parametrize("cfg", MIXING_CFGS)
def test_cfg_without_the_alias_deletion_does_not_start(cfg, file_lists, tmp_path):
    """The fault of issue 27: digitizers emptied, aliases kept -> cmsRun stops at start-up."""
    text = (CFG_DIR / cfg).read_text()
    assert text.count(ALIAS_DELETION) == 1
    mutated = tmp_path / cfg
    mutated.write_text(text.replace(ALIAS_DELETION, "pass"))
    with pytest.raises(CmsRunError, match=r"EDAlias parameter set mismatch\nThere are no products of type '\w+'\n"
                                          r"with module label 'mix'"):
        run_cfg(mutated, file_lists, cwd=tmp_path)


def test_alias_check_accepts_what_the_framework_accepts(file_lists, tmp_path):
    """The check is the framework's, not a blanket rule: aliases to a mixing module that
    keeps its digitizers, or to a mixing module that is on no path (the gun cfg loads
    mixNoPU_cfi but never schedules mix), are fine."""
    text = (CFG_DIR / "PUCalibration_cfg.py").read_text()
    kept = tmp_path / "kept_cfg.py"
    kept.write_text(text.replace("process.mix.digitizers = cms.PSet()", "pass").replace(ALIAS_DELETION, "pass"))
    process = run_cfg(kept, file_lists, cwd=tmp_path)["process"]
    assert "simSiPixelDigis" in process.aliases and process.mix.digitizers.parameterNames_()
    gun = run_cfg(CFG_DIR / "PythiaGunCalibration_cfg.py", [], cwd=tmp_path)["process"]
    assert "simEcalUnsuppressedDigis" in gun.aliases and gun.mix.digitizers.parameterNames_() != []


@pytest.mark.parametrize("cfg, module", [("PUCalibration_cfg.py", "timeCalib"), ("SimHitDump_cfg.py", "simHitDumper")])
def test_the_crossing_frames_read_are_the_ones_mixed(cfg, module, file_lists, tmp_path):
    """A wrong crossing-frame list gives ProductNotFound at the first event (Event::get)."""
    process = run_cfg(CFG_DIR / cfg, file_lists, cwd=tmp_path)["process"]
    check_consumed_from_mixing(process, module, "MixPSimHitSource")
    mutated = tmp_path / cfg
    mutated.write_text((CFG_DIR / cfg).read_text().replace("'TrackerHitsTIDHighTof', ", ""))
    process = run_cfg(mutated, file_lists, cwd=tmp_path)["process"]
    with pytest.raises(CmsRunError, match="mix:g4SimHitsTrackerHitsTIDHighTof"):
        check_consumed_from_mixing(process, module, "MixPSimHitSource")


@pytest.mark.parametrize("cfg", ["PUCalibration_cfg.py", "PythiaGunCalibration_cfg.py"])
def test_verbose_output_is_let_through_the_message_logger(cfg, file_lists, tmp_path):
    """The analyzer's verbose lines are LogVerbatim (INFO), hidden by the default
    MessageLogger (cerr INFO limit 0): the cfg gives their category a limit when asked."""
    args = input_args(cfg, file_lists)
    quiet = run_cfg(CFG_DIR / cfg, args, cwd=tmp_path)["process"]
    assert "Phase2TrackerBXHistogram" not in vars(quiet.MessageLogger.cerr)
    verbose = run_cfg(CFG_DIR / cfg, ["verbose=2", *args], cwd=tmp_path)["process"]
    assert verbose.timeCalib.VerbosityLevel.value() == 2
    assert verbose.MessageLogger.cerr.Phase2TrackerBXHistogram.limit.value() == -1
