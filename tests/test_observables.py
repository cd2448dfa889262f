"""Scan observables (physics.md §7) against an independent PyROOT computation, the 1D
fallback, the Parquet cache and the aggregator registration.

Files are real harvested-layout ROOT files (tests/scanprod.py: the CBC emulator run on the
test-vector hits); the reference numbers are recomputed here with ROOT's own TFile/GetBinContent
loops over the 1D histograms and the 2D maps, as the seed did.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot

from scanprod import BASE_PARAMS, emulated_histograms, make_production
from timecal_analysis import observables as obs
from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import HARVESTED_PREFIX, MODES, hist1d_name
from timecal_core.config.timerc import Timerc
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import AggregationRequest
from timecal_core.run.tasks import finished_tasks

GRID = {"threshold": [5800.0, 8000.0], "thresholdsmearing": [0.0, 500.0]}


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Path:
    return make_production(tmp_path_factory.mktemp("prod") / "scan", GRID, every=10)


def root_reference(path: Path, mode: str) -> dict[str, list[float]]:
    """The seed's computation, with PyROOT, straight from the histograms."""
    import ROOT

    f = ROOT.TFile.Open(str(path))
    base = "DQMData/Run 1/Ph2TkBXHist/Run summary"
    offset = f.Get(f"{base}/Hist2D/OffsetScan{mode}")
    hits = f.Get(f"{base}/Hist2D/HitsTrueNumberScan{mode}")
    attribution = f.Get(f"{base}/Hist2D/AttributionScan{mode}")
    out = {k: [] for k in ("delay", "efficiency", "next_bx", "previous_bx", "fire_rate", "out_of_time",
                           "out_of_time_error", "mean", "mean_error")}
    yaxis = offset.GetYaxis()
    for iy in range(1, yaxis.GetNbins() + 1):
        delay = round(yaxis.GetBinCenter(iy), 6)
        out["delay"].append(delay)
        for key, x in (("efficiency", 0.0), ("next_bx", 1.0), ("previous_bx", -1.0)):
            ix = offset.GetXaxis().FindBin(x)
            den = hits.GetBinContent(ix, iy)
            out[key].append(offset.GetBinContent(ix, iy) / den if den else 0.0)
        fired, total = 0.0, 0.0
        for ix in range(0, attribution.GetNbinsX() + 2):
            total += attribution.GetBinContent(ix, iy)
            if attribution.GetXaxis().GetBinCenter(ix) >= 1:
                fired += attribution.GetBinContent(ix, iy)
        out["fire_rate"].append(fired / total if total else 0.0)

        h = f.Get(f"{base}/Hist1D/{hist1d_name(mode, delay)}")
        assert h, f"no 1D histogram at delay {delay}"
        n = h.GetNbinsX()
        centres = [h.GetBinCenter(i) for i in range(1, n + 1)]
        in_time = 1 + min(range(n), key=lambda i: abs(centres[i]))
        sum_w = sum_out = var_out = sum_wc = var_wc = 0.0
        for i in range(1, n + 1):
            w, s, c = h.GetBinContent(i), h.GetBinError(i), h.GetBinCenter(i)
            sum_w += w
            sum_wc += w * c
            var_wc += (s * c) ** 2
            if i != in_time:
                sum_out += w
                var_out += s * s
        out["out_of_time"].append(sum_out / sum_w if sum_w else math.nan)
        out["out_of_time_error"].append(math.sqrt(var_out) / sum_w if sum_w else math.nan)
        out["mean"].append(sum_wc / sum_w if sum_w else math.nan)
        out["mean_error"].append(math.sqrt(var_wc) / sum_w if sum_w else math.nan)
    f.Close()
    return out


def test_every_observable_matches_root_loops(production):
    tasks = finished_tasks(production)
    table = obs.build_table(tasks)
    assert len(table) == len(tasks) * len(MODES) * 51
    for task in tasks:
        for mode in MODES:
            rows = table[(table["file"] == str(task.output)) & (table["mode"] == mode)].sort_values("delay")
            reference = root_reference(task.output, mode)
            for key, expected in reference.items():
                np.testing.assert_allclose(rows[key].to_numpy(), expected, rtol=1e-9, atol=1e-12,
                                           err_msg=f"{key} {mode} {task.output.name}")
            for name, value in task.params.items():
                assert (rows[name] == value).all()
    # The test data are not degenerate: curves actually move with the delay.
    assert table["efficiency"].max() > 0.9 and table["efficiency"].min() < 0.2
    assert table["next_bx"].max() > 0.3 and table["out_of_time"].std() > 0.05


def test_files_without_1d_histograms_are_read_from_the_maps(tmp_path):
    """The fast path needs only the six 2D maps (the 1D histograms are never opened)."""
    hists = emulated_histograms(5800, every=25)
    with_1d, without = tmp_path / "a.root", tmp_path / "b.root"
    write_histograms(with_1d, hists, BASE_PARAMS)
    write_histograms(without, hists, BASE_PARAMS, with_1d=False)
    a = obs.file_observables(with_1d, BASE_PARAMS).drop(columns="file")
    b = obs.file_observables(without, BASE_PARAMS).drop(columns="file")
    assert a.equals(b)


def test_configured_1d_histograms_elsewhere_are_read(tmp_path):
    """When the configuration names 1D histograms the maps do not hold, those are used."""
    hists = emulated_histograms(8000, every=25)
    path = tmp_path / "custom.root"
    write_histograms(path, hists, BASE_PARAMS, with_1d=False)
    rng = np.random.default_rng(3)
    refs = []
    expected = {}
    with uproot.update(path) as f:
        for i, delay in enumerate(hists.delays[:4]):
            w = rng.integers(0, 50, size=11).astype(np.float64)
            f[f"Custom/BX_Sampled_{i}"] = (w, np.linspace(-5.5, 5.5, 12))
            refs.append(obs.BXHistRef("Sampled", float(delay), "Custom", f"BX_Sampled_{i}"))
            c = np.arange(-5, 6, dtype=np.float64)
            expected[i] = ((w.sum() - w[5]) / w.sum(), (w * c).sum() / w.sum(),
                           np.sqrt((w * c * c).sum()) / w.sum())
    sources = obs.Sources(bx_hists=tuple(refs), modes=("Sampled",))
    assert not any(sources.map_holds(r) for r in refs)
    table = obs.file_observables(path, BASE_PARAMS, sources)
    assert list(table["delay"]) == [r.delay for r in refs]
    for i, (oot, mean, mean_error) in expected.items():
        assert table["out_of_time"][i] == pytest.approx(oot)
        assert table["mean"][i] == pytest.approx(mean)
        assert table["mean_error"][i] == pytest.approx(mean_error)
    # The standard names in the standard folder are the map rows: nothing extra is read.
    standard = obs.BXHistRef("Sampled", 12.5, f"{HARVESTED_PREFIX}/Hist1D", hist1d_name("Sampled", 12.5))
    assert obs.Sources(bx_hists=(standard,)).map_holds(standard)


def test_maps_named_by_the_configuration(tmp_path):
    """A raw-layout file (no DQM folders) is read where the configuration says."""
    hists = emulated_histograms(5800, every=25)
    harvested, raw = tmp_path / "h.root", tmp_path / "r.root"
    write_histograms(harvested, hists, BASE_PARAMS, with_1d=False)
    write_histograms(raw, hists, BASE_PARAMS, harvested=False, with_1d=False)
    sources = obs.Sources(efficiency_folder="Ph2TkBXHist/Hist2D", firerate_folder="Ph2TkBXHist/Hist2D/")
    a = obs.file_observables(harvested, BASE_PARAMS).drop(columns="file")
    b = obs.file_observables(raw, BASE_PARAMS, sources).drop(columns="file")
    assert a.equals(b)


def test_missing_object_names_file_and_object(tmp_path):
    path = tmp_path / "broken.root"
    write_histograms(path, emulated_histograms(5800, every=25), BASE_PARAMS, with_1d=False)
    with uproot.update(path) as f:
        del f[f"{HARVESTED_PREFIX}/Hist2D"]["AttributionScanLatched"]
    with pytest.raises(UserError) as err:
        obs.file_observables(path, BASE_PARAMS)
    assert str(path) in str(err.value) and "AttributionScanLatched" in str(err.value)
    assert "\n" not in str(err.value)
    ref = obs.BXHistRef("Sampled", 0.0, "Nowhere", "BX_0")
    with pytest.raises(UserError, match=r"broken\.root: no object 'Nowhere/BX_0'"):
        obs.file_observables(path, BASE_PARAMS, obs.Sources(bx_hists=(ref,), modes=("Sampled",)))


def test_unknown_observable_lists_the_known():
    with pytest.raises(UserError) as err:
        obs.observable("efficency")
    for o in obs.OBSERVABLES:
        assert o.key in str(err.value)
    assert obs.observable("Out-of-time fraction").key == "out_of_time"
    assert obs.observable("next bx contamination").key == "next_bx"


def test_cache_reused_then_rebuilt_when_an_input_changes(tmp_path, production):
    prod = tmp_path / "prod"
    shutil.copytree(production, prod)
    tasks = finished_tasks(prod)
    target = tmp_path / "scans" / "observables.parquet"
    first, rebuilt = obs.load_or_build(tasks, target)
    assert rebuilt and target.is_file() and (target.parent / "tasks.parquet").is_file()
    assert rebuilt.read == len(tasks)
    again, rebuilt = obs.load_or_build(tasks, target)
    assert not rebuilt and again.table().equals(first.table())
    # Touch one input: its mtime changes, the table is rebuilt.
    st = os.stat(tasks[0].output)
    os.utime(tasks[0].output, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched, rebuilt = obs.load_or_build(tasks, target)
    assert rebuilt and (rebuilt.read, rebuilt.reused) == (1, len(tasks) - 1)  # only that file is read
    pd.testing.assert_frame_equal(wide(touched), wide(first))
    _, rebuilt = obs.load_or_build(tasks, target)
    assert not rebuilt
    _, rebuilt = obs.load_or_build(tasks, target, rebuild=True)  # --cache
    assert rebuilt and rebuilt.read == len(tasks)
    _, rebuilt = obs.load_or_build(tasks, target, obs.Sources(modes=("Sampled",)))
    assert rebuilt  # other objects read: another table
    _, rebuilt = obs.load_or_build(tasks[:2], target)
    assert rebuilt  # another set of inputs


def test_aggregator_is_registered_and_writes_the_table(tmp_path, production):
    from timecal_core.contract.plugins import get_registry

    aggregator = get_registry().aggregators["observables"].item
    scans = tmp_path / "scans"
    timerc = Timerc(tmp_path / "timerc", {"paths": {"scans": str(scans)}})
    tasks = tuple(finished_tasks(production))
    written = aggregator.run(AggregationRequest(production, "cbcsim", tasks, timerc))
    (folder,) = [p for p in scans.iterdir()]  # a production outside [paths] production: NAME-HASH
    assert folder.name.startswith(production.name + "-")
    assert written == [folder / obs.TABLE_NAME, folder / "tasks.parquet"]
    values, task_table = pd.read_parquet(written[0]), pd.read_parquet(written[1])
    assert len(task_table) == len(tasks) and task_table.index.name == "task"  # parameters once per task
    assert len(values) == len(tasks) * len(MODES) * 51
    table = values.join(task_table, on="task")  # the wide table, as the README shows it
    assert set(table["file"]) == {str(t.output) for t in tasks}
    assert set(table["mode"]) == set(MODES)
    for task in tasks:
        rows = table[table["task_id"] == task.task_id]
        assert len(rows) == len(MODES) * 51 and (rows["threshold"] == task.params["threshold"]).all()


def wide(store) -> pd.DataFrame:
    return store.table().sort_values(["file", "mode", "delay"], ignore_index=True)
