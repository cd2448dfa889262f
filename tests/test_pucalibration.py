"""The PUCalibration chain (cmsRun PUCalibration_cfg.py, cmsRun Harvester_cfg.py, rename,
parameters stored). CMSSW cannot be installed here: ``cmsRun`` is the stand-in of
tests/standins/cmsrun.py, which honours the same command lines and writes real ROOT files."""

import hashlib
import json

import pytest
import uproot

from conftest import run_bxrun, write_timerc
from timecal_core.cms.harvested_layout import (HARVESTED_PREFIX, MODES, harvested_name, raw_name,
                                               scan_delays)
from timecal_core.cms.readers import read_maps
from timecal_core.cms.root_records import read_parameters


@pytest.fixture
def cmssw_setup(tmp_path, monkeypatch, cmsrun_standin):
    cmssw = tmp_path / "cmssw"
    cmssw.mkdir()
    for cfg in ("PUCalibration_cfg.py", "Harvester_cfg.py"):
        (cmssw / cfg).write_text("# placeholder: the stand-in cmsRun only looks at the name\n")
    rc = write_timerc(tmp_path / "cfg", cmssw=cmssw, init="export TIMECAL_INIT_MARK=from-timerc "
                      "CMSSW_VERSION=CMSSW_15_1_0_pre3")
    monkeypatch.setenv("TIMECAL_CONFIG", str(rc))
    hs = tmp_path / "hs; touch PWNED.txt"  # a legal file name that would be a command in a shell
    hs.write_text("file:/store/hs.root\n")
    pu = tmp_path / "pu.txt"
    pu.write_text("file:/store/pu.root\n")
    return tmp_path, hs, pu


def test_scan_chain_produces_the_harvested_file(cmssw_setup, monkeypatch):
    tmp_path, hs, pu = cmssw_setup
    monkeypatch.setenv("VIRTUAL_ENV", "/some/venv")
    res = run_bxrun("--script", "PUCalibration_cfg.py", "--run", "threshold=5000", "N=2",
                    "--HSFile", hs, "--PUFile", pu, "-o", tmp_path / "prod", cwd=tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    (task,) = [p for p in (tmp_path / "prod" / "results").iterdir() if not p.name.startswith(".")]
    params = {"subdet": "ALL", "N": 2, "pileup": 200, "pt": 2.0, "threshold": 5000.0,
              "thresholdsmearing": 0.0, "tofsmearing": 0.0}
    harvested = task / harvested_name(params)
    assert harvested.is_file()
    assert not list(task.glob("*_raw.root")) and not list(task.glob("DQM_*.root"))
    stored = read_parameters(harvested)
    assert stored["params"]["threshold"] == 5000.0 and stored["params"]["HSfile"] == str(hs)
    record = json.loads((task / "params.json").read_text())
    assert record["output"] == harvested.name
    # Provenance: the release init gave the steps, the hashes of the cfg files that ran.
    cmssw = tmp_path / "cmssw"
    assert record["software"]["cmssw"] == "CMSSW_15_1_0_pre3"
    assert record["software"]["cfg_sha256"] == {
        cfg: hashlib.sha256((cmssw / cfg).read_bytes()).hexdigest()
        for cfg in ("PUCalibration_cfg.py", "Harvester_cfg.py")}
    assert record["output_bytes"] == harvested.stat().st_size and record["cpu"] > 0
    maps = read_maps(harvested)
    assert maps.offset_scan["Sampled"].shape == (len(scan_delays(0.0, 2.0, 0.5)), 13)
    with uproot.open(harvested) as f:
        assert f[f"{HARVESTED_PREFIX}/Hist1D/BXHistogramSampledOffset0p500000"].classname == "TH1F"
    log = (task / "task.log").read_text()
    calls = [json.loads(line) for line in log.splitlines() if line.startswith('{"argv"')]
    assert len(calls) == 2
    assert calls[0]["argv"][0].endswith("PUCalibration_cfg.py") and f"HSfile={hs}" in calls[0]["argv"]
    assert calls[1]["argv"][1] == "input=" + raw_name(params)
    assert all(c["TIMECAL_INIT_MARK"] == "from-timerc" for c in calls)  # the init snippet ran
    assert all(c["VIRTUAL_ENV"] is None for c in calls)  # virtualenv variables removed
    assert not list(tmp_path.rglob("PWNED.txt"))


def test_emulate_with_random_delay(cmssw_setup):
    tmp_path, hs, pu = cmssw_setup
    res = run_bxrun("--script", "pucalibration", "--run", "mode=emulate", "--HSFile", hs, "--PUFile", pu,
                    "-o", tmp_path / "prod")
    assert res.returncode == 0, res.stderr + res.stdout
    (out,) = (tmp_path / "prod" / "results").glob("*/BXHistEmulateDelay_*_harvested.root")
    maps = read_maps(out)
    assert len(maps.delays) == 1
    assert out.name.startswith("BXHistEmulateDelay_" + f"{maps.delays[0]:.2f}".replace(".", "p"))


def test_missing_cmssw_configuration_is_reported_before_running(cmssw_setup, monkeypatch):
    tmp_path, hs, pu = cmssw_setup
    rc = write_timerc(tmp_path / "cfg2", cmssw=tmp_path / "empty")
    monkeypatch.setenv("TIMECAL_CONFIG", str(rc))
    res = run_bxrun("--script", "pucalibration", "--run", "N=1", "--HSFile", hs, "--PUFile", pu,
                    "-o", tmp_path / "prod")
    assert res.returncode == 2 and "has no PUCalibration_cfg.py" in res.stderr
    assert not (tmp_path / "prod").exists()


def test_compact_layout_drops_the_1d_histograms_and_keeps_info_and_maps(cmssw_setup):
    """--layout compact: the harvested DQM file is rewritten without Hist1D; the 2D maps are
    the full layout's bin for bin and Info keeps its elements (named <Name>i=7</Name>)."""
    tmp_path, hs, pu = cmssw_setup
    files = {}
    for name in ("full", "compact"):
        res = run_bxrun("--script", "PUCalibration_cfg.py", "--run", "threshold=5000", "--HSFile", hs,
                        "--PUFile", pu, "-o", tmp_path / name, "--layout", name, cwd=tmp_path)
        assert res.returncode == 0, res.stderr + res.stdout
        (record,) = (tmp_path / name / "results").glob("*/params.json")
        assert json.loads(record.read_text())["layout"] == name
        files[name] = record.parent / json.loads(record.read_text())["output"]
    full, compact = files["full"], files["compact"]
    with uproot.open(full) as f, uproot.open(compact) as c:
        assert any("Hist1D" in k for k in f.keys()) and not any("Hist1D" in k for k in c.keys())
        info = f"{HARVESTED_PREFIX}/Info"
        assert c[info].keys() == f[info].keys() == ["<SmearingSeed>i=7</SmearingSeed>;1",
                                                    "<SmearingKey>s=module</SmearingKey>;1"]
    a, b = read_maps(full), read_maps(compact)
    for mode in MODES:
        for kind in ("offset_scan", "hits_true", "attribution", "errors"):
            assert (getattr(a, kind)[mode] == getattr(b, kind)[mode]).all()
    assert read_parameters(compact)["layout"] == "compact"
    assert compact.stat().st_size < full.stat().st_size
