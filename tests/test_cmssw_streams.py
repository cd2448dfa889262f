"""The Phase2TrackerBXHistogram plugin run as cmsRun would run it with several streams.

CMSSW cannot be installed here, so the plugin's own source is compiled (with the CXXFLAGS of
plugins/BuildFile.xml) against the runnable stand-in of the CMSSW API in
tests/helpers/cmssw_stubs, and driven by tests/helpers/cmssw_stubs/drivers/
bxhistogram_streams.cc: one module copy per stream, all booking into one DQM store (as the
DQMStore shares the global monitor elements between stream copies), the job's events dealt
out to the copies, endStream() on each. The stand-in is not CMSSW (no scheduler, services
or ROOT I/O); what is real is the plugin code and its decisions.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from helpers.cxx_cbc import buildfile_cxxflags  # tests/ is on sys.path (rootdir, no __init__.py)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmssw" / "SiPhase2TimingCalibration"
STUBS = ROOT / "tests" / "helpers" / "cmssw_stubs"
DRIVERS = STUBS / "drivers"
SMEARED = ["--set", "ThresholdSmearing_Barrel=300", "--set", "ThresholdSmearing_Endcap=450",
           "--set", "TOFSmearing=2.5", "--set", "SmearingSeed=20241129"]
FAST = ["--set", "OffsetStep=2.5", "--set", "VerbosityLevel=2"]  # 22 delays; log every hit
HIT_LINE = re.compile(r"hit on (\d+) key (\d+) track (-?\d+) .* toa (\S+) charge (\S+) threshold (\S+)$")


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    """The drivers compiled once: {name: binary}."""
    work = tmp_path_factory.mktemp("cmssw_drivers")
    (work / "src" / "SimTracker").mkdir(parents=True)
    (work / "src" / "SimTracker" / "SiPhase2TimingCalibration").symlink_to(PACKAGE)
    binaries = {}
    for name in ("bxhistogram_streams", "simhitdumper_describe"):
        binary = work / name
        cmd = [shutil.which("g++"), "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", *buildfile_cxxflags(),
               "-I", str(STUBS), "-I", str(work / "src"), "-o", str(binary), str(DRIVERS / f"{name}.cc")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        binaries[name] = binary
    return binaries


def run(drivers, *args, events=24, streams=1, deal="blocks", expect=0):
    cmd = [str(drivers["bxhistogram_streams"]), "--events", str(events), "--streams", str(streams), "--deal", deal,
           *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, result.stderr[-2000:]
    mes = {}
    for line in result.stdout.splitlines():
        _, path, kind, *values = line.split(" ")
        mes[path] = (kind, values)
    hits = [HIT_LINE.search(line).groups() for line in result.stderr.splitlines() if " hit on " in line]
    return mes, hits, result.stderr


def filled(mes) -> float:
    return sum(float(v) for kind, values in mes.values() if kind.startswith("TH") for v in values)


# --------------------------------------------------------------------------- streams
@pytest.mark.parametrize("streams, deal", [(2, "blocks"), (3, "roundrobin"), (4, "reverse")])
@pytest.mark.parametrize("mixing", [False, True])
def test_histograms_and_offsets_do_not_depend_on_the_streams(drivers, streams, deal, mixing):
    """Two copies fed one half of the events each (or 3 copies round-robin, 4 copies in
    reverse order) give the histograms of one copy fed everything, bit for bit, and every
    hit gets the same smeared threshold and time of arrival."""
    args = [*SMEARED, *FAST, "--set", f"UseMixing={mixing}"]
    one_mes, one_hits, _ = run(drivers, *args)
    many_mes, many_hits, _ = run(drivers, *args, streams=streams, deal=deal)
    assert filled(one_mes) > 0 and len(one_hits) > 500
    assert many_mes == one_mes
    assert sorted(many_hits) == sorted(one_hits)


def offsets_by_key(hits):
    thresholds, sensors = defaultdict(set), defaultdict(set)
    for module, key, _track, _toa, _charge, threshold in hits:
        thresholds[int(key)].add(float(threshold))
        sensors[int(key)].add(int(module))
    return thresholds, sensors


def test_one_offset_per_module_shared_by_its_two_sensors(drivers):
    _, hits, _ = run(drivers, *SMEARED, *FAST, events=40)
    thresholds, sensors = offsets_by_key(hits)
    assert all(len(values) == 1 for values in thresholds.values())
    assert all(key & 0x3 == 0 for key in thresholds)  # TrackerTopology::stack: the module
    assert all(sensor - key in (1, 2) for key, members in sensors.items() for sensor in members)
    assert sum(len(members) == 2 for members in sensors.values()) >= 10  # both sensors seen, one value
    assert len({v for values in thresholds.values() for v in values}) == len(thresholds)


def test_sensor_keying_of_the_deployed_analyzer_is_an_option(drivers):
    _, hits, _ = run(drivers, *SMEARED, *FAST, "--set", "SmearingKey=sensor", events=40)
    thresholds, sensors = offsets_by_key(hits)
    assert all(members == {key} for key, members in sensors.items())
    by_module = defaultdict(set)
    for key, values in thresholds.items():
        assert len(values) == 1
        by_module[key & ~0x3].update(values)
    assert sum(len(values) == 2 for values in by_module.values()) >= 10  # two draws per module


def test_bad_smearing_key_is_a_configuration_error(drivers):
    _, _, stderr = run(drivers, "--set", "SmearingKey=stack", expect=3)
    assert "SmearingKey" in stderr and "module, sensor" in stderr


# --------------------------------------------------------------------------- the draw itself
MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """SplitMix64's finaliser (Steele, Lea, Flood 2014), written from the published constants."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def expected_shift(seed: int, key: int, quantity: int, width: float) -> np.float32:
    word = splitmix64(splitmix64(seed ^ (quantity << 32)) ^ key)
    u = (word >> 11) * 2.0**-53
    return np.float32(-width + 2.0 * width * u)


def test_offsets_are_the_documented_function_of_seed_and_module(drivers):
    """Independent transcription of ModuleSmearing.h: threshold = float(thr) + float(U),
    U = -w + 2 w u, u from (seed, key, quantity 1 = threshold)."""
    _, hits, _ = run(drivers, *SMEARED, *FAST)
    thresholds, _ = offsets_by_key(hits)
    for key, (value,) in thresholds.items():
        barrel = (key >> 25) & 0x7 == 5
        want = np.float32(np.float32(5800.0) + expected_shift(20241129, key, 1, 300.0 if barrel else 450.0))
        assert np.float32(value) == want, key
    shifts = [float(np.float32(v) - np.float32(5800.0)) for (v,) in thresholds.values()]
    assert min(shifts) < -100 and max(shifts) > 100  # spread over +-w


def test_no_smearing_means_no_offset_and_no_random_engine(drivers):
    _, hits, _ = run(drivers, *FAST)
    assert hits and {float(h[5]) for h in hits} == {5800.0}
    # the stand-in has no RandomNumberGenerator service: the plugin compiled without one
    source = (PACKAGE / "plugins" / "Phase2TrackerBXHistogram.cc").read_text()
    assert "RandomNumberGenerator.h" not in source and "getEngine(" not in source


def test_seed_is_recorded_and_changes_the_result(drivers):
    mes_a, _, _ = run(drivers, *SMEARED, "--set", "SmearingSeed=7", "--set", "OffsetStep=2.5")
    mes_b, _, _ = run(drivers, *SMEARED, "--set", "SmearingSeed=8", "--set", "OffsetStep=2.5")
    assert mes_a["Ph2TkBXHist/Info/SmearingSeed"] == ("INT", ["7"])
    assert mes_b["Ph2TkBXHist/Info/SmearingSeed"] == ("INT", ["8"])
    assert mes_a["Ph2TkBXHist/Info/SmearingKey"] == ("STRING", ["module"])
    assert {k: v for k, v in mes_a.items() if "Info" not in k} != {k: v for k, v in mes_b.items() if "Info" not in k}


def test_histograms_are_double_precision(drivers):
    """TH1F/TH2F bins stop counting exactly at 2^24 entries; the plugin books TH1D/TH2D."""
    assert float(struct.unpack("f", struct.pack("f", 2.0**24 + 1))[0]) == 2.0**24  # why
    mes, _, _ = run(drivers, "--set", "OffsetStep=2.5")
    kinds = {kind for kind, _ in mes.values()}
    assert kinds == {"TH1D", "TH2D", "INT", "STRING"}
    assert sum(kind == "TH1D" for kind, _ in mes.values()) == 2 * 22


# --------------------------------------------------------------------------- geometry
def test_hits_without_geometry_are_counted_and_reported_once(drivers):
    _, _, one = run(drivers, "--orphans", "0.25", "--set", "OffsetStep=2.5")
    _, _, two = run(drivers, "--orphans", "0.25", "--set", "OffsetStep=2.5", streams=2)
    for stderr in (one, two):
        warnings = [line for line in stderr.splitlines() if line.startswith("%MSG-w")]
        assert len(warnings) == 1, stderr
        dropped, seen = map(int, re.search(r"(\d+) of (\d+) Outer Tracker sim hits were dropped", warnings[0]).groups())
        assert seen == 24 * 80 and 0.15 * seen < dropped < 0.35 * seen
        assert "geometry=" in warnings[0]
    assert [line for line in one.splitlines() if line.startswith("%MSG-w")] == \
           [line for line in two.splitlines() if line.startswith("%MSG-w")]


def test_job_fails_when_every_hit_has_no_geometry(drivers):
    mes, _, stderr = run(drivers, "--no-geometry", "--set", "OffsetStep=2.5", streams=2, expect=3)
    (exception,) = [line for line in stderr.splitlines() if line.startswith("EXCEPTION")]
    assert "all 1920 Outer Tracker sim hits have no module" in exception and "geometry=" in exception
    assert filled(mes) == 0


def test_a_matching_geometry_gives_no_warning(drivers):
    _, _, stderr = run(drivers, "--set", "OffsetStep=2.5")
    assert "%MSG-w" not in stderr and "0 without geometry" in stderr


# --------------------------------------------------------------------------- 2S only
def test_cbc_model_on_2s_modules_only_is_an_option_off_by_default(drivers):
    all_mes, all_hits, all_log = run(drivers, *FAST)
    two_s_mes, two_s_hits, two_s_log = run(drivers, *FAST, "--set", "Only2SModules=True")
    skipped = int(re.search(r"(\d+) selected hits on PS modules skipped", two_s_log).group(1))
    assert "0 selected hits on PS modules skipped" in all_log
    assert skipped > 0 and len(two_s_hits) == len(all_hits) - skipped
    # the driver's geometry: stack index i + 1 is a PS module when i % 3 == 0
    assert all((((int(h[1]) >> 2) & 0xFFFF) - 1) % 3 != 0 for h in two_s_hits)
    assert any((((int(h[1]) >> 2) & 0xFFFF) - 1) % 3 == 0 for h in all_hits)
    assert 0 < filled(two_s_mes) < filled(all_mes)


# --------------------------------------------------------------------------- descriptions
def describe(binary) -> dict[str, tuple[str, str]]:
    out = subprocess.run([str(binary), "--describe"] if "bxhistogram" in binary.name else [str(binary)],
                         capture_output=True, text=True, check=True).stdout
    lines = [line.split(" ", 2) for line in out.splitlines()]
    assert lines[-1][:2] == ["@label", ""]  # addWithDefaultLabel
    return {name: (kind, value) for name, kind, value in lines[:-1]}


def cfg_value(parameter) -> tuple[str, object]:
    from helpers.cmssw_standin import InputTag

    def tag(t):
        return t.moduleLabel + (":" + t.productInstanceLabel if t.productInstanceLabel else "")

    if isinstance(parameter, InputTag):
        return "InputTag", tag(parameter)
    kind = parameter.configTypeName()
    if kind == "VInputTag":
        return kind, ",".join(tag(t) for t in parameter)
    return kind, parameter.value()


def described_value(kind: str, text: str):
    if kind == "string":
        return text.strip("'")
    if kind == "bool":
        return text == "True"
    if kind in ("int32", "uint32"):
        return int(text)
    if kind == "double":
        return float(text)
    if kind == "vdouble":
        return [float(v) for v in text.split(",")]
    return text


def test_cfi_is_the_fill_descriptions_default(drivers):
    """fillDescriptions() makes cmsRun reject a misspelled parameter; the cfi must declare
    exactly the described parameters, with the described types and defaults."""
    import runpy

    from helpers.cmssw_standin import installed

    with installed():
        cfi = runpy.run_path(str(PACKAGE / "python" / "Phase2TrackerBXHistogram_cfi.py"))["timeCalib"]
    described = describe(drivers["bxhistogram_streams"])
    assert set(cfi.parameterNames_()) == set(described)
    for name, (kind, text) in described.items():
        assert cfg_value(getattr(cfi, name)) == (kind, described_value(kind, text)), name


def test_simhit_dumper_cfg_sets_exactly_the_described_parameters(drivers, tmp_path):
    from helpers.cmssw_standin import run_cfg

    hs, pu = tmp_path / "hs.txt", tmp_path / "pu.txt"
    hs.write_text("/data/ttbar.root\n")
    pu.write_text("/data/minbias.root\n")
    ns = run_cfg(PACKAGE / "test" / "SimHitDump_cfg.py", [f"HSfile={hs}", f"PUfile={pu}"], cwd=tmp_path)
    dumper = ns["process"].simHitDumper
    described = describe(drivers["simhitdumper_describe"])
    assert set(dumper.parameterNames_()) == set(described)
    for name, (kind, _text) in described.items():
        assert cfg_value(getattr(dumper, name))[0] == kind, name
