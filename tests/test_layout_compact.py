"""The compact output layout (issue 28): the same production of the CBC emulator written in
the full DQM layout and in the compact one gives the same numbers to every reader: the 2D
maps bin for bin (uproot and ROOT), the observables store, plotScan's figure data and
runCalibration's delays; the compact files hold no 1D histogram and fit in 60 kB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot

from conftest import run_bxrun, write_timerc
from timecal_core.cms.harvested_layout import HARVESTED_PREFIX, MODES, PARAMS_KEY
from timecal_core.cms.readers import read_maps

GRID = "threshold: [5000, 8000]\ntofsmearing: [0, 2]\nnhits: 20000\nseed: 3\n"


@pytest.fixture(scope="module")
def productions(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    rc = write_timerc(root, extra="dashboard = no\n")
    env = {**__import__("os").environ, "TIMECAL_CONFIG": str(rc)}
    (root / "grid.yml").write_text(GRID)
    out = {}
    for name in ("full", "compact"):
        res = run_bxrun("--script", "cbcsim", "--yaml", root / "grid.yml", "-o", name, "--layout", name,
                        "--interval", "2", env=env, timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        out[name] = root / "data" / "production" / name
    return root, env, out


def results(prod: Path) -> dict[str, Path]:
    """task id -> its harvested file."""
    out = {}
    for params in prod.glob("results/*/params.json"):
        record = json.loads(params.read_text())
        out[record["task_id"]] = params.parent / record["output"]
    return out


def test_compact_files_hold_the_maps_and_nothing_they_repeat(productions):
    _, _, prods = productions
    full, compact = results(prods["full"]), results(prods["compact"])
    assert set(full) == set(compact) and len(full) == 4  # the layout is not part of a task's identity
    for task_id, path in compact.items():
        assert path.stat().st_size <= 60_000, path.stat().st_size
        assert full[task_id].stat().st_size > 500_000
        with uproot.open(path) as f, uproot.open(full[task_id]) as g:
            assert not [k for k in f.keys() if "Hist1D" in k]
            assert len([k for k in g.keys() if "Hist1D" in k]) > 1000
            assert "smearing" not in f and "smearing" in g
            assert json.loads(str(f["cbcsim_info"]))["layout"] == "compact"
            assert json.loads(str(f[PARAMS_KEY]))["layout"] == "compact"
        a, b = read_maps(full[task_id]), read_maps(path)
        for mode in MODES:
            for kind in ("offset_scan", "hits_true", "attribution", "errors"):
                np.testing.assert_array_equal(getattr(a, kind)[mode], getattr(b, kind)[mode])
        record = json.loads((path.parent / "params.json").read_text())
        assert record["layout"] == "compact" and record["output_bytes"] == path.stat().st_size
    record = json.loads((prods["compact"] / "infiles" / "production.json").read_text())
    assert record["layout"] == "compact"


def test_root_reads_the_compact_file(productions):
    import ROOT

    _, _, prods = productions
    path = next(iter(results(prods["compact"]).values()))
    f = ROOT.TFile.Open(str(path))
    try:
        h = f.Get(f"{HARVESTED_PREFIX}/Hist2D/OffsetScanSampled")
        assert h and h.InheritsFrom("TH2")
        maps = read_maps(path)
        got = np.array([[h.GetBinContent(ix, iy) for ix in range(13)] for iy in range(1, h.GetNbinsY() + 1)])
        np.testing.assert_array_equal(got, maps.offset_scan["Sampled"])
    finally:
        f.Close()


def _wide(scan: Path) -> pd.DataFrame:
    values = pd.read_parquet(scan / "observables.parquet")
    table = values.join(pd.read_parquet(scan / "tasks.parquet"), on="task")
    return table.drop(columns=["task", "file", "mtime_ns", "size"]).sort_values(
        ["task_id", "mode", "delay"], ignore_index=True)


def test_plotscan_gives_the_same_numbers(productions):
    root, env, prods = productions
    from timecal_analysis.plotscan import main

    scans = root / "data" / "scans"
    import os

    old = os.environ.get("TIMECAL_CONFIG")
    os.environ["TIMECAL_CONFIG"] = env["TIMECAL_CONFIG"]
    try:
        for name in prods:
            assert main(["-i", name, "--formats", "root", "--only", "curves"]) == 0
    finally:
        if old is None:
            del os.environ["TIMECAL_CONFIG"]
        else:
            os.environ["TIMECAL_CONFIG"] = old
    # The end-of-production store and the figures' data.
    pd.testing.assert_frame_equal(_wide(scans / "full"), _wide(scans / "compact"))
    figures = sorted(p.relative_to(scans / "full") for p in (scans / "full").glob("plots/*/*/*.root"))
    assert len(figures) == 6 * 2 * 2 * 2  # observables x scanned parameters x slices x modes
    for figure in figures:
        with uproot.open(scans / "full" / figure) as a, uproot.open(scans / "compact" / figure) as b:
            assert a.keys() == b.keys()
            for key in a.keys():
                np.testing.assert_array_equal(a[key].values(), b[key].values())
                np.testing.assert_array_equal(a[key].errors(), b[key].errors())


def test_runcalibration_gives_the_same_delays(productions, monkeypatch):
    root, env, prods = productions
    from timecal_analysis import runcalibration

    monkeypatch.setenv("TIMECAL_CONFIG", env["TIMECAL_CONFIG"])
    tables = {}
    for name in prods:
        yml = root / f"calib_{name}.yml"
        yml.write_text(f"""
closure:
  test: {{production: {name}, params: {{threshold: 8000}}, delays: {{min: 10, max: 40}}}}
  evaluators:
    - {{method: Binomial, name: b_{name}, template: {{production: {name}, params: {{threshold: 8000, tofsmearing: 2}}}}}}
    - {{method: Mean, name: m_{name}, template: {{production: {name}, params: {{threshold: 8000, tofsmearing: 2}}}}}}
""")
        assert runcalibration.main([str(yml), "-o", f"calib_{name}", "--no-plots"]) == 0
        table = pd.read_parquet(root / "data" / "calibration" / f"calib_{name}" / "results.parquet")
        tables[name] = table.drop(columns=[c for c in table.columns if table[c].dtype == object
                                          or re.search("evaluator|file|test", c)])
    assert len(tables["full"]) == 2 * 2 * 301  # 2 tests (files) x 301 delays x 2 evaluators
    pd.testing.assert_frame_equal(tables["full"].reset_index(drop=True), tables["compact"].reset_index(drop=True))


def test_a_rerun_keeps_the_layout_and_a_wrong_one_is_refused(productions):
    root, env, prods = productions
    res = run_bxrun("--script", "cbcsim", "-o", "compact", env=env)
    assert res.returncode == 0 and "every task is already done" in res.stdout, res.stdout + res.stderr
    assert json.loads((prods["compact"] / "infiles" / "production.json").read_text())["layout"] == "compact"
    res = run_bxrun("--script", "cbcsim", "-o", "compact", "--layout", "tiny", env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "--layout 'tiny': cbcsim writes full, compact" in res.stderr
    res = run_bxrun("--script", "sleeper", "--run", "index=1", "-o", "s", "--layout", "compact", env=env)
    assert res.returncode == 2 and "script sleeper writes a single layout" in res.stderr


def test_timerc_chooses_the_layout(tmp_path):
    rc = write_timerc(tmp_path, extra="\n[production]\nlayout = compact\n")
    env = {**__import__("os").environ, "TIMECAL_CONFIG": str(rc)}
    res = run_bxrun("--script", "cbcsim", "--run", "nhits=500", "offset_step=1", "-o", "one", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    (params,) = (tmp_path / "data" / "production" / "one" / "results").glob("*/params.json")
    assert json.loads(params.read_text())["layout"] == "compact"
