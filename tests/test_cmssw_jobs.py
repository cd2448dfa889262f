"""The Phase2TrackerBXHistogram plugin run as cmsRun runs a DQMGlobalEDAnalyzer.

CMSSW cannot be installed here, so the plugin's own source is compiled (with the CXXFLAGS of
plugins/BuildFile.xml) against the runnable stand-in of the CMSSW API in
tests/helpers/cmssw_stubs, and driven by tests/helpers/cmssw_stubs/drivers/bxhistogram_job.cc:
one module instance, the run's histograms booked once, the job's events dealt out to threads
that call dqmAnalyze at the same time, endJob at the end. The stand-in is not CMSSW (no
scheduler, services or ROOT I/O); where CMSSW's behaviour decides what the plugin must do
(idToDet throws on an unknown DetId, Event::get throws on a missing product, a weighted Fill
switches ROOT to Sumw2, the default MessageLogger hides INFO) it behaves as CMSSW does and
cites the upstream file (cmssw_stub_api.h). What is real is the plugin code and its decisions.
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

from helpers.cxx_cbc import buildfile_cxxflags, run_cxx  # tests/ is on sys.path (rootdir, no __init__.py)
from timecal_core.cms.harvested_layout import scan_delays

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmssw" / "SiPhase2TimingCalibration"
STUBS = ROOT / "tests" / "helpers" / "cmssw_stubs"
DRIVERS = STUBS / "drivers"
SMEARED = ["--set", "ThresholdSmearing_Barrel=300", "--set", "ThresholdSmearing_Endcap=450",
           "--set", "TOFSmearing=2.5", "--set", "SmearingSeed=20241129"]
FAST = ["--set", "OffsetStep=2.5", "--set", "VerbosityLevel=2", "--log-info"]  # 22 delays; log every hit
HIT_LINE = re.compile(r"hit on (\d+) key (\d+) track (-?\d+) .* toa (\S+) charge (\S+) threshold (\S+)$")
EVENTS = 24
HITS_PER_EVENT = 80  # the driver: 40 tracks x 2 hits, all in the Outer Tracker


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    """The drivers compiled once: {name: binary}."""
    work = tmp_path_factory.mktemp("cmssw_drivers")
    (work / "src" / "SimTracker").mkdir(parents=True)
    (work / "src" / "SimTracker" / "SiPhase2TimingCalibration").symlink_to(PACKAGE)
    binaries = {}
    for name in ("bxhistogram_job", "simhitdumper_job", "simhitdumper_describe"):
        binary = work / name
        cmd = [shutil.which("g++"), "-std=c++17", "-O1", "-pthread", "-Wall", "-Wextra", "-Werror",
               *buildfile_cxxflags(), "-I", str(STUBS), "-I", str(work / "src"), "-o", str(binary),
               str(DRIVERS / f"{name}.cc")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        binaries[name] = binary
    return binaries


class Job:
    """What one run of the driver printed."""

    def __init__(self, stdout: str, stderr: str):
        self.mes, self.axes, self.entries, self.sumw2 = {}, {}, {}, {}
        self.generated = (0, 0)
        for line in stdout.splitlines():
            tag, *rest = line.split(" ")
            if tag == "GENERATED":
                self.generated = tuple(map(int, rest))
            elif tag == "ME":
                path, kind, *values = rest
                self.mes[path] = (kind, values)
            elif tag == "AXIS":
                path, nx, xlow, xhigh, ny, ylow, yhigh = rest
                self.axes[path] = (int(nx), float(xlow), float(xhigh), int(ny), float(ylow), float(yhigh))
            elif tag == "ENTRIES":
                self.entries[path := rest[0]] = float(rest[1])
            elif tag == "SUMW2":
                self.sumw2[rest[0]] = [float(v) for v in rest[1:]]
        self.stderr = stderr
        self.hits = [HIT_LINE.search(line).groups() for line in stderr.splitlines() if " hit on " in line]

    def contents(self, path: str) -> np.ndarray:
        return np.array([float(v) for v in self.mes[path][1]])

    def map2d(self, name: str) -> np.ndarray:
        """A Hist2D map as [y bin incl. flows, x bin incl. flows]."""
        nx, *_, ny, _, _ = self.axes[f"Ph2TkBXHist/Hist2D/{name}"]
        return self.contents(f"Ph2TkBXHist/Hist2D/{name}").reshape(ny + 2, nx + 2)

    def messages(self, severity: str) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(f"%MSG-{severity} ")]


def run(drivers, *args, events=EVENTS, threads=1, deal="blocks", expect=0) -> Job:
    cmd = [str(drivers["bxhistogram_job"]), "--events", str(events), "--threads", str(threads), "--deal", deal,
           *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == expect, result.stderr[-2000:]
    return Job(result.stdout, result.stderr)


def filled(job: Job) -> float:
    return sum(float(v) for kind, values in job.mes.values() if kind.startswith("TH") for v in values)


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("threads, deal", [(2, "blocks"), (3, "roundrobin"), (4, "reverse")])
@pytest.mark.parametrize("mixing", [False, True])
def test_histograms_and_offsets_do_not_depend_on_the_threads(drivers, threads, deal, mixing):
    """Two threads fed one half of the events each (or 3 round-robin, 4 in reverse order),
    all calling the one module instance at once, give the histograms of one thread fed
    everything, bit for bit, and every hit gets the same smeared threshold and time."""
    args = [*SMEARED, *FAST, "--set", f"UseMixing={mixing}"]
    one = run(drivers, *args)
    many = run(drivers, *args, threads=threads, deal=deal)
    assert filled(one) > 0 and len(one.hits) > 500
    assert many.mes == one.mes
    assert sorted(many.hits) == sorted(one.hits)


def test_one_fill_per_bin_and_event_gives_the_per_hit_counts_of_the_header(drivers):
    """The per-event counts, filled once per non-empty bin with their count as weight, are
    exactly the per-hit fills of the deployed loop: the header's standalone driver (one
    unit fill per decision) on the hits the plugin logged gives the same 1D histograms,
    OffsetScan, HitsTrueNumberScan and AttributionScan; the errors stay sqrt(N) (no Sumw2:
    TH1::kIsNotW), and there are far fewer fills than decisions."""
    job = run(drivers, *SMEARED, *FAST, threads=3, deal="roundrobin")
    charge = np.array([float(h[4]) for h in job.hits], np.float32)
    toa = np.array([float(h[3]) for h in job.hits], np.float32)
    threshold = np.array([float(h[5]) for h in job.hits], np.float32)
    expected = run_cxx(charge, toa, threshold, (0.0, 50.0, 2.5), "compat")
    delays = expected["delays"]
    assert len(delays) == 22 and len(job.hits) > 500
    for mode in ("sampled", "latched"):
        title = mode.capitalize()
        for d, delay in enumerate(delays):
            path = f"Ph2TkBXHist/Hist1D/BXHistogram{title}Offset{delay:.6f}".replace(".", "p", 1)
            np.testing.assert_array_equal(job.contents(path), expected[mode][d], err_msg=path)
        offset = job.map2d(f"OffsetScan{title}")
        np.testing.assert_array_equal(offset[1:-1], expected[mode])
        assert not offset[0].any() and not offset[-1].any()  # nothing outside the delay axis
        attribution = job.map2d(f"AttributionScan{title}")
        np.testing.assert_array_equal(attribution[1:-1], expected[f"attribution_{mode}"])
        hits_true = job.map2d(f"HitsTrueNumberScan{title}")[1:-1]
        assert (hits_true[:, :11] == len(job.hits)).all() and not hits_true[:, 11:].any()  # bx = -5 .. 5
    assert job.sumw2 == {}  # errors are sqrt(contents), as with unit fills
    offset = "Ph2TkBXHist/Hist2D/OffsetScanSampled"
    assert 0 < job.entries[offset] < job.contents(offset).sum() / 5


def offsets_by_key(hits):
    thresholds, sensors = defaultdict(set), defaultdict(set)
    for module, key, _track, _toa, _charge, threshold in hits:
        thresholds[int(key)].add(float(threshold))
        sensors[int(key)].add(int(module))
    return thresholds, sensors


def test_one_offset_per_module_shared_by_its_two_sensors(drivers):
    hits = run(drivers, *SMEARED, *FAST, events=40).hits
    thresholds, sensors = offsets_by_key(hits)
    assert all(len(values) == 1 for values in thresholds.values())
    assert all(key & 0x3 == 0 for key in thresholds)  # TrackerTopology::stack: the module
    assert all(sensor - key in (1, 2) for key, members in sensors.items() for sensor in members)
    assert sum(len(members) == 2 for members in sensors.values()) >= 10  # both sensors seen, one value
    assert len({v for values in thresholds.values() for v in values}) == len(thresholds)


def test_sensor_keying_of_the_deployed_analyzer_is_an_option(drivers):
    hits = run(drivers, *SMEARED, *FAST, "--set", "SmearingKey=sensor", events=40).hits
    thresholds, sensors = offsets_by_key(hits)
    assert all(members == {key} for key, members in sensors.items())
    by_module = defaultdict(set)
    for key, values in thresholds.items():
        assert len(values) == 1
        by_module[key & ~0x3].update(values)
    assert sum(len(values) == 2 for values in by_module.values()) >= 10  # two draws per module


def test_bad_smearing_key_is_a_configuration_error(drivers):
    stderr = run(drivers, "--set", "SmearingKey=stack", expect=3).stderr
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
    hits = run(drivers, *SMEARED, *FAST).hits
    thresholds, _ = offsets_by_key(hits)
    for key, (value,) in thresholds.items():
        barrel = (key >> 25) & 0x7 == 5
        want = np.float32(np.float32(5800.0) + expected_shift(20241129, key, 1, 300.0 if barrel else 450.0))
        assert np.float32(value) == want, key
    shifts = [float(np.float32(v) - np.float32(5800.0)) for (v,) in thresholds.values()]
    assert min(shifts) < -100 and max(shifts) > 100  # spread over +-w


def test_no_smearing_means_no_offset_and_no_random_engine(drivers):
    hits = run(drivers, *FAST).hits
    assert hits and {float(h[5]) for h in hits} == {5800.0}
    # the stand-in has no RandomNumberGenerator service: the plugin compiled without one
    source = (PACKAGE / "plugins" / "Phase2TrackerBXHistogram.cc").read_text()
    assert "RandomNumberGenerator.h" not in source and "getEngine(" not in source


def test_seed_is_recorded_and_changes_the_result(drivers):
    a = run(drivers, *SMEARED, "--set", "SmearingSeed=7", "--set", "OffsetStep=2.5").mes
    b = run(drivers, *SMEARED, "--set", "SmearingSeed=8", "--set", "OffsetStep=2.5").mes
    assert a["Ph2TkBXHist/Info/SmearingSeed"] == ("INT", ["7"])
    assert b["Ph2TkBXHist/Info/SmearingSeed"] == ("INT", ["8"])
    assert a["Ph2TkBXHist/Info/SmearingKey"] == ("STRING", ["module"])
    assert {k: v for k, v in a.items() if "Info" not in k} != {k: v for k, v in b.items() if "Info" not in k}


def test_histograms_are_double_precision(drivers):
    """TH1F/TH2F bins stop counting exactly at 2^24 entries; the plugin books TH1D/TH2D."""
    assert float(struct.unpack("f", struct.pack("f", 2.0**24 + 1))[0]) == 2.0**24  # why
    mes = run(drivers, "--set", "OffsetStep=2.5").mes
    kinds = {kind for kind, _ in mes.values()}
    assert kinds == {"TH1D", "TH2D", "INT", "STRING"}
    assert sum(kind == "TH1D" for kind, _ in mes.values()) == 2 * 22


# --------------------------------------------------------------------------- the delay axis
@pytest.mark.parametrize("scan", [(0.0, 50.0, 0.1), (0.0, 50.0, 0.5), (0.0, 50.0, 1.0), (5.0, 30.0, 0.25)])
def test_the_delay_axis_has_one_bin_per_delay_scanned(drivers, scan):
    """[first - step/2, last + step/2] with one bin per accumulated delay, the axis the
    Python writer (timecal_core.cms.fast_root) gives the same delays, to the bit; every delay's
    fills land in its own row (0/50/0.5 scans 102 delays up to 50.5, 0/50/1 scans 52 up to
    51: the deployed [OffsetMin - step/2, OffsetMax + step/2] put half of them in the wrong
    row)."""
    low, high, step = scan
    job = run(drivers, "--set", f"OffsetMin={low}", "--set", f"OffsetMax={high}", "--set", f"OffsetStep={step}",
              events=6)
    delays = scan_delays(low, high, step)
    for name in ("OffsetScan", "HitsTrueNumberScan", "AttributionScan"):
        for mode in ("Sampled", "Latched"):
            *_, ny, ylow, yhigh = job.axes[f"Ph2TkBXHist/Hist2D/{name}{mode}"]
            assert (ny, ylow, yhigh) == (len(delays), float(delays[0] - step / 2), float(delays[-1] + step / 2))
    offset = job.map2d("OffsetScanSampled")
    for d, delay in enumerate(delays):
        path = f"Ph2TkBXHist/Hist1D/BXHistogramSampledOffset{delay:.6f}".replace(".", "p", 1)
        np.testing.assert_array_equal(offset[d + 1], job.contents(path), err_msg=f"delay {delay}")
    assert (job.map2d("HitsTrueNumberScanSampled")[1:-1, 5] > 0).all()  # no empty row


def test_emulate_mode_centres_its_one_bin_on_the_delay(drivers):
    job = run(drivers, "--set", "Mode=emulate", "--set", "OffsetEmulate=23.45", events=4)
    *_, ny, ylow, yhigh = job.axes["Ph2TkBXHist/Hist2D/OffsetScanSampled"]
    assert (ny, ylow, yhigh) == (1, 23.45 - 0.05, 23.45 + 0.05)


# --------------------------------------------------------------------------- hits it cannot use
def dropped_counts(job: Job) -> tuple[int, int]:
    (warning,) = job.messages("w")
    dropped, seen = map(int, re.search(r"(\d+) of (\d+) Outer Tracker sim hits were dropped", warning).groups())
    return dropped, seen


@pytest.mark.parametrize("threads", [1, 3])
def test_hits_on_detids_the_geometry_lacks_take_the_exception_path_and_are_counted(drivers, threads):
    """idToDet throws WrongTrackerSubDet (as TrackerGeometry.cc does); the plugin catches it,
    skips the hit, counts it exactly, and reports the count and the geometry's own message
    for the first one once, at the end of the job; the other hits are analysed as usual."""
    job = run(drivers, "--orphans", "0.25", "--set", "OffsetStep=2.5", threads=threads)
    generated, orphans = job.generated
    assert generated == EVENTS * HITS_PER_EVENT and 0.15 * generated < orphans < 0.35 * generated
    assert dropped_counts(job) == (orphans, generated)
    (warning,) = job.messages("w")
    assert re.search(r"first: Invalid DetID: no GeomDetUnit associated with raw ID \d+ of subdet ID [45]\)", warning)
    assert "geometry=" in warning
    (summary,) = job.messages("p")
    assert f"{generated} Outer Tracker sim hits, {orphans} not in the geometry" in summary
    assert filled(job) > 0


def test_job_fails_when_no_hit_is_in_the_geometry(drivers):
    job = run(drivers, "--no-geometry", "--set", "OffsetStep=2.5", threads=2, expect=3)
    (exception,) = [line for line in job.stderr.splitlines() if line.startswith("EXCEPTION")]
    assert f"all {EVENTS * HITS_PER_EVENT} Outer Tracker sim hits have a DetId the tracker geometry" in exception
    assert "Invalid DetID" in exception and "geometry=" in exception
    assert filled(job) == 0


def test_a_matching_geometry_gives_no_warning(drivers):
    job = run(drivers, "--set", "OffsetStep=2.5")
    assert job.messages("w") == [] and " 0 not in the geometry" in job.messages("p")[0]


@pytest.mark.parametrize("mixing, collections", [
    (True, "mix:g4SimHitsTrackerHitsTOBLowTof, mix:g4SimHitsTrackerHitsTOBHighTof, "
           "mix:g4SimHitsTrackerHitsTIDLowTof, mix:g4SimHitsTrackerHitsTIDHighTof (tracks: mix:g4SimHits)"),
    (False, "g4SimHits:TrackerHitsTOBLowTof, g4SimHits:TrackerHitsTOBHighTof, g4SimHits:TrackerHitsTIDLowTof, "
            "g4SimHits:TrackerHitsTIDHighTof (tracks: g4SimHits)"),
])
def test_a_job_with_no_outer_tracker_hit_fails_naming_the_collections_it_read(drivers, mixing, collections):
    job = run(drivers, "--no-hits", "--set", f"UseMixing={mixing}", "--set", "OffsetStep=2.5", threads=2, expect=3)
    (exception,) = [line for line in job.stderr.splitlines() if line.startswith("EXCEPTION")]
    assert f"no Outer Tracker sim hit in {EVENTS} event(s); the hit collections read were {collections}" in exception
    assert ("crossingFrames" in exception) == mixing


def test_a_missing_collection_stops_the_job(drivers):
    """Not an empty scan: Event::get throws ProductNotFound at the first event."""
    job = run(drivers, "--drop", "mix:g4SimHitsTrackerHitsTIDHighTof", "--set", "UseMixing=True", expect=3)
    assert "EXCEPTION [ProductNotFound]" in job.stderr and "mix:g4SimHitsTrackerHitsTIDHighTof" in job.stderr


def run_dumper(drivers, *args, expect=0) -> Job:
    cmd = [str(drivers["simhitdumper_job"]), "--events", str(EVENTS), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, result.stderr[-2000:]
    return Job(result.stdout, result.stderr)


def test_the_dumper_counts_and_reports_hits_the_geometry_lacks_the_same_way(drivers):
    job = run_dumper(drivers, "--orphans", "0.25")
    generated, orphans = job.generated
    assert orphans > 0 and dropped_counts(job) == (orphans, generated)
    (summary,) = job.messages("p")
    assert f"{generated} Outer Tracker sim hits, {generated - orphans} written, {orphans} not in the geometry" in summary
    assert "Invalid DetID: no GeomDetUnit associated with raw ID" in job.messages("w")[0]


@pytest.mark.parametrize("args, words", [
    (["--no-geometry"], ["all 1920 Outer Tracker sim hits have a DetId", "geometry="]),
    (["--no-hits", "--set", "UseMixing=True"], ["no Outer Tracker sim hit in 24 event(s)",
                                                "mix:g4SimHitsTrackerHitsTOBLowTof", "crossingFrames"]),
])
def test_the_dumper_fails_a_job_that_cannot_dump_anything(drivers, args, words):
    job = run_dumper(drivers, *args, expect=3)
    (exception,) = [line for line in job.stderr.splitlines() if line.startswith("EXCEPTION")]
    for word in words:
        assert word in exception


# --------------------------------------------------------------------------- what it tells the user
def test_the_summary_shows_under_the_default_message_logger(drivers):
    """LogPrint: the stand-in's logger hides INFO as the default MessageLogger does."""
    job = run(drivers, "--set", "OffsetStep=2.5", "--set", "VerbosityLevel=2")
    (summary,) = job.messages("p")
    assert f"timeCalib summary: {EVENTS} events, {EVENTS * HITS_PER_EVENT} Outer Tracker sim hits" in summary
    assert job.messages("v") == [] and job.hits == []  # hidden: their category is not enabled


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_every_verbosity_level_adds_what_it_says(drivers, level):
    """0: the summary; 1: + the configuration and one line per event; 2: + one line per
    selected hit; 3: + the BXs each hit fired at each delay."""
    job = run(drivers, "--set", "OffsetStep=2.5", "--set", f"VerbosityLevel={level}", "--log-info", events=4)
    verbatim = job.messages("v")
    configuration = [m for m in verbatim if "mode scan, model compat, 22 delays from 0 to 52.5 ns" in m]
    events = [m for m in verbatim if re.search(r"timeCalib: event \d+: 80 Outer Tracker sim hits", m)]
    fired = [line for line in job.stderr.splitlines() if re.match(r"  delay [\d.]+: sampled bx", line)]
    assert len(configuration) == (level >= 1) and len(events) == 4 * (level >= 1)
    assert (len(job.hits) > 0) == (level >= 2)
    assert (len(fired) > len(job.hits)) == (level >= 3)
    assert len(job.messages("p")) == 1


def test_an_unknown_verbosity_level_is_rejected(drivers):
    stderr = run(drivers, "--set", "VerbosityLevel=4", expect=3).stderr
    assert "VerbosityLevel 4 not understood" in stderr


# --------------------------------------------------------------------------- 2S only
def test_cbc_model_on_2s_modules_only_is_an_option_off_by_default(drivers):
    every = run(drivers, *FAST)
    two_s = run(drivers, *FAST, "--set", "Only2SModules=True")
    skipped = int(re.search(r"(\d+) selected hits on PS modules skipped", two_s.messages("p")[0]).group(1))
    assert "0 selected hits on PS modules skipped" in every.messages("p")[0]
    assert skipped > 0 and len(two_s.hits) == len(every.hits) - skipped
    # the driver's geometry: stack index i + 1 is a PS module when i % 3 == 0
    assert all((((int(h[1]) >> 2) & 0xFFFF) - 1) % 3 != 0 for h in two_s.hits)
    assert any((((int(h[1]) >> 2) & 0xFFFF) - 1) % 3 == 0 for h in every.hits)
    assert 0 < filled(two_s) < filled(every)


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
    described = describe(drivers["bxhistogram_job"])
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
