"""The cbcsim production script end to end: the plugin's plan, the step run warm by the core
(and cold as ``python -m timecal_script_cbcsim`` for user errors), the core's task chain, and the harvested file read
back with uproot and with ROOT itself."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import uproot

from timecal_core.cms.harvested_layout import (HARVESTED_PREFIX, PARAMS_KEY, harvested_name,
                                               scan_delays)
from timecal_core.cms.readers import read_maps
from timecal_core.cms.root_records import read_parameters
from timecal_core.contract.hookspecs import TaskRequest
from timecal_core.config.parameters import as_argv, complete
from timecal_core.contract.plugins import get_registry
from timecal_script_cbcsim.detection import reference_emulate
from timecal_script_cbcsim.dump import write_dump
from timecal_script_cbcsim.hits import SimHits, selection
from timecal_script_cbcsim.smearing import ModuleSmearing
from timecal_script_cbcsim.synthetic import SyntheticModel, generate, generate_chunks

SMALL = {"nhits": "4000", "offset_step": "2.5", "thresholdsmearing": "400", "tofsmearing": "0.5", "seed": "3"}


def script():
    return get_registry().script("cbcsim").item


def params_of(given):
    return complete(script().parameters, given, "test")


def run_step(tmp_path, given):
    """The step as the core runs it: warm, forked from this process's step server."""
    from timecal_core.run.tasks import run_step as core_run_step

    params = params_of(given)
    plan = script().plan(TaskRequest(params, tmp_path, None))
    (step,) = plan.steps
    log = tmp_path.parent / f"{tmp_path.name}.log"
    record = core_run_step(step, tmp_path, log, "", "test")
    assert record["exit_code"] == 0 and record["warm"], log.read_text()
    return params, plan


def expected_from(hits, params, delays):
    """Independent recomputation: selection, smearing and the literal reference emulator."""
    modules = np.unique(hits.module)
    smearing = ModuleSmearing.draw(modules, params["thresholdsmearing"], params["tofsmearing"], params["seed"])
    sel = hits.take(selection(hits, params["pt"], params["subdet"]))
    toa, thr = smearing.apply(sel.module, sel.toa, params["threshold"])
    return reference_emulate(sel.charge, toa, thr, delays, params["model"])


def test_scan_writes_the_harvested_layout(tmp_path):
    params, plan = run_step(tmp_path, SMALL)
    out = tmp_path / plan.output
    assert plan.output == harvested_name(params)
    assert plan.output.startswith("BXHistScan_subdet_ALL_N_1_pileup_200_pt_2p0_threshold_5800_thresholdsmearing_400p0")
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == [plan.output]
    delays = scan_delays(0.0, 50.0, 2.5)
    maps = read_maps(out)
    np.testing.assert_allclose(maps.delays, delays, atol=1e-9)
    hits = SimHits.concatenate(list(generate_chunks(SyntheticModel(nhits=4000), seed=3)))
    expected = expected_from(hits, params, delays)
    np.testing.assert_array_equal(maps.offset_scan["Sampled"], expected.sampled)
    np.testing.assert_array_equal(maps.offset_scan["Latched"], expected.latched)
    np.testing.assert_array_equal(maps.attribution["Latched"], expected.attribution_latched)
    np.testing.assert_array_equal(maps.hits_true["Sampled"], expected.hits_true())
    with uproot.open(out) as f:
        one = f[f"{HARVESTED_PREFIX}/Hist1D/BXHistogramLatchedOffset12p500000"]
        np.testing.assert_array_equal(one.values(flow=True), expected.latched[5])
        info = json.loads(str(f["cbcsim_info"]))
        smearing = f["smearing"].arrays(library="np")
    assert info["hits_selected"] == expected.n_hits and info["source"] == "synthetic"
    assert info["smearing"]["modules"] == smearing["module"].size
    assert np.abs(smearing["threshold_offset"]).max() <= 400 and smearing["threshold_offset"].std() > 50
    stored = read_parameters(out)
    assert stored["params"]["threshold"] == 5800.0 and stored["params"]["seed"] == 3


def test_emulate_draws_a_recorded_reproducible_delay(tmp_path):
    given = {**SMALL, "mode": "emulate", "seed": "11"}
    params, plan = run_step(tmp_path, given)
    delay = plan.metadata["delay"]
    assert 0 <= delay < 50 and round(delay, 2) == delay
    assert plan.output == harvested_name(params, delay)
    assert plan.output.startswith(f"BXHistEmulateDelay_{delay:.2f}_".replace(".", "p"))
    assert (tmp_path / plan.output).is_file()
    again = script().plan(TaskRequest(params_of(given), tmp_path, None))
    assert again.metadata["delay"] == delay
    other = script().plan(TaskRequest(params_of({**given, "seed": "12"}), tmp_path, None))
    assert other.metadata["delay"] != delay
    fixed = script().plan(TaskRequest(params_of({**given, "offset": "12.34"}), tmp_path, None))
    assert fixed.metadata["delay"] == 12.34 and "offset=12.34" in fixed.steps[0].argv
    maps = read_maps(tmp_path / plan.output)
    assert maps.delays == pytest.approx([delay])
    assert read_parameters(tmp_path / plan.output)["metadata"]["delay"] == delay


def test_a_dump_replaces_the_synthetic_hits(tmp_path):
    hits = generate(SyntheticModel(nhits=3000), np.random.default_rng(99))
    dump = tmp_path / "dump.root"
    write_dump(dump, hits)
    work = tmp_path / "work"
    work.mkdir()
    given = {**SMALL, "hits": str(dump), "subdet": "BHH", "pt": "1.0", "model": "exact"}
    params, plan = run_step(work, given)
    maps = read_maps(work / plan.output)
    expected = expected_from(hits, params, scan_delays(0, 50, 2.5))
    assert expected.n_hits > 0
    np.testing.assert_array_equal(maps.offset_scan["Sampled"], expected.sampled)
    np.testing.assert_array_equal(maps.attribution["Sampled"], expected.attribution_sampled)


def test_through_the_core_task_chain(tmp_path):
    from timecal_core.plan.grid import TaskSpec
    from timecal_core.run.tasks import execute_task

    params = params_of({**SMALL, "mode": "emulate", "offset": "7.5"})
    result = execute_task(TaskSpec("c0ffee0001", "cbcsim_task", params, "cbcsim"), str(tmp_path))
    record = json.loads((tmp_path / "results" / "cbcsim_task" / "params.json").read_text())
    assert record["output"].startswith("BXHistEmulateDelay_7p50_")
    stored = read_parameters(result.output)
    assert stored["metadata"]["delay"] == 7.5 and stored["script"] == "cbcsim"


@pytest.mark.parametrize("argv, message", [
    (["threshold=abc"], "threshold"),
    (["hits=/nonexistent/dump.root"], "/nonexistent/dump.root"),
    (["mode=emulate"], "offset"),
    (["subdet=XYZ"], "subdet"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, "-m", "timecal_script_cbcsim", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_root_itself_reads_the_output(tmp_path):
    ROOT = pytest.importorskip("ROOT")
    params, plan = run_step(tmp_path, {**SMALL, "tofsmearing": "0"})
    f = ROOT.TFile.Open(str(tmp_path / plan.output))
    try:
        h = f.Get(f"{HARVESTED_PREFIX}/Hist1D/BXHistogramSampledOffset0p000000")
        assert h.ClassName() == "TH1F" and h.GetNbinsX() == 11
        scan = f.Get(f"{HARVESTED_PREFIX}/Hist2D/OffsetScanSampled")
        assert scan.ClassName() == "TH2F" and scan.GetNbinsY() == len(scan_delays(0, 50, 2.5))
        maps = read_maps(tmp_path / plan.output)
        assert [h.GetBinContent(i) for i in range(13)] == list(maps.offset_scan["Sampled"][0])
        stored = json.loads(str(f.Get(PARAMS_KEY).GetString()))
        assert stored["params"]["threshold"] == params["threshold"]
    finally:
        f.Close()


def test_plan_passes_every_parameter_and_no_shell(tmp_path):
    params = params_of(SMALL)
    plan = script().plan(TaskRequest(params, tmp_path, None))
    (step,) = plan.steps
    assert step.python == "timecal_script_cbcsim.run:main" and not step.cmssw
    assert set(step.argv) == set(as_argv(params))
