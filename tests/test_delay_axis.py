"""The delay axis of the 2D maps for non-default scans, on the Python side (issue 27).

The CMSSW analyzer's side (the axis it books, and that every delay's fills land in its own
row) is tests/test_cmssw_jobs.py::test_the_delay_axis_has_one_bin_per_delay_scanned, which
compares with the same ``scan_delays`` values. Here: the Python writer's axis, and that
both readers (``readers.read_maps`` for runCalibration, ``observables.file_columns`` for
plotScan) give every row its delay, for files of the current writers and for files of the
deployed analyzer, whose axis [OffsetMin - step/2, OffsetMax + step/2] put the delays of
such scans in a neighbour's bin (filled here by ROOT itself, TH2D::Fill on that axis).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from timecal_analysis import observables as obs
from timecal_core.cms import fast_root, readers
from timecal_core.cms import harvested_layout as layout

SCANS = [(0.0, 50.0, 0.1), (0.0, 50.0, 0.5), (0.0, 50.0, 1.0), (5.0, 30.0, 0.25)]
PREFIX = layout.HARVESTED_PREFIX


def tagged_histograms(delays: np.ndarray, step: float) -> layout.BXHistograms:
    """Every row says which delay it is: d + 1 sampled and 2 (d + 1) latched hits in the
    in-time bin (ROOT bin 5), d + 1 of 10 hits firing once."""
    n = len(delays)
    sampled = np.zeros((n, 13), np.int64)
    sampled[:, 6] = np.arange(1, n + 1)
    attribution = np.zeros((n, 7), np.int64)
    attribution[:, 2] = np.arange(1, n + 1)
    attribution[:, 1] = 10 * n - attribution[:, 2]
    return layout.BXHistograms(delays, sampled, 2 * sampled, attribution, attribution.copy(), 10 * n, step)


def assert_rows_keep_their_delay(delays, offset_sampled, expected_delays):
    np.testing.assert_allclose(delays, expected_delays, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(offset_sampled[:, 6], np.arange(1, len(expected_delays) + 1))


@pytest.mark.parametrize("scan", SCANS, ids=lambda s: "/".join(f"{v:g}" for v in s))
def test_the_python_writer_and_both_readers_agree_on_the_delays(scan, tmp_path):
    delays = layout.scan_delays(*scan)
    step = scan[2]
    path = tmp_path / "scan_harvested.root"
    fast_root.write_histograms(path, tagged_histograms(delays, step), {"threshold": 5800.0})
    with uproot.open(path) as f:
        axis = f[f"{PREFIX}/Hist2D/OffsetScanSampled"].member("fYaxis")
        # the analyzer books the same axis (tests/test_cmssw_jobs.py), to the bit
        assert (axis.member("fNbins"), axis.member("fXmin"), axis.member("fXmax")) == (
            len(delays), float(delays[0] - step / 2), float(delays[-1] + step / 2))
    maps = readers.read_maps(path)
    assert_rows_keep_their_delay(maps.delays, maps.offset_scan["Sampled"], delays)
    table = obs.file_observables(path, {"threshold": 5800.0})
    sampled = table[table["mode"] == "Sampled"].sort_values("delay")
    np.testing.assert_allclose(sampled["delay"], np.round(delays, obs.DELAY_DECIMALS), atol=1e-9)
    # efficiency = OffsetScan / HitsTrueNumberScan in the in-time bin: (d + 1) / (10 n)
    np.testing.assert_allclose(sampled["efficiency"], np.arange(1, len(delays) + 1) / (10 * len(delays)))


def write_deployed_file(path: Path, scan: tuple[float, float, float], with_1d: bool = True) -> np.ndarray:
    """What the deployed analyzer wrote for this scan: TH2D on [min - step/2, max + step/2]
    with one bin per accumulated delay, filled with TH2D::Fill(v, d) by ROOT, and the 1D
    histograms named after the delays; returns the delays."""
    import ROOT

    low, high, step = scan
    delays = layout.scan_delays(*scan)
    hists = tagged_histograms(delays, step)
    out = ROOT.TFile(str(path), "RECREATE")
    out.mkdir(f"{PREFIX}/Hist2D")
    out.mkdir(f"{PREFIX}/Hist1D")
    for mode in layout.MODES:
        out.cd(f"{PREFIX}/Hist2D")
        maps = {name: ROOT.TH2D(f"{name}{mode}", "", 11, -5.5, 5.5, len(delays), low - step / 2, high + step / 2)
                for name in ("OffsetScan", "HitsTrueNumberScan")}
        attribution = ROOT.TH2D(f"AttributionScan{mode}", "", 5, -0.5, 4.5, len(delays), low - step / 2,
                                high + step / 2)
        counts = getattr(hists, mode.lower())
        for d, delay in enumerate(delays):
            for bx in range(-5, 6):
                value = bx - 1.5
                maps["HitsTrueNumberScan"].Fill(value, delay, hists.n_hits)
                weight = counts[d, layout._bx_root_bin(bx)]
                if weight:
                    maps["OffsetScan"].Fill(value, delay, float(weight))
            for fired, weight in enumerate(hists.attribution_sampled[d][1:6]):
                attribution.Fill(fired, delay, float(weight))
        for h in (*maps.values(), attribution):
            h.Write()
        if with_1d:
            out.cd(f"{PREFIX}/Hist1D")
            for d, delay in enumerate(delays):
                one = ROOT.TH1D(layout.hist1d_name(mode, delay), "", 11, -5.5, 5.5)
                one.Fill(-0.5, float(counts[d, 6]))
                one.Write()
    out.Close()
    return delays


@pytest.mark.parametrize("scan", [(0.0, 50.0, 0.5), (0.0, 50.0, 1.0), (5.0, 30.0, 0.25)],
                         ids=lambda s: "/".join(f"{v:g}" for v in s))
def test_files_of_the_deployed_analyzer_are_read_right(scan, tmp_path):
    """Its axis put these scans' delays in a neighbour's bin (and the last one in the
    overflow): the readers recognise the axis, confirm it with the 1D names, and take each
    delay's row where ROOT filled it."""
    path = tmp_path / "deployed_harvested.root"
    delays = write_deployed_file(path, scan)
    with uproot.open(path) as f:
        values = f[f"{PREFIX}/Hist2D/OffsetScanSampled"].values(flow=True)[6, 1:-1]
        assert (values == 0).any()  # the deployed axis left a row empty: the bug being read around
    maps = readers.read_maps(path)
    assert_rows_keep_their_delay(maps.delays, maps.offset_scan["Sampled"], delays)
    np.testing.assert_array_equal(maps.hits_true["Sampled"][:, 6], 10 * len(delays))
    table = obs.file_observables(path, {})
    sampled = table[table["mode"] == "Sampled"].sort_values("delay")
    np.testing.assert_allclose(sampled["delay"], np.round(delays, obs.DELAY_DECIMALS), atol=1e-9)
    np.testing.assert_allclose(sampled["efficiency"], np.arange(1, len(delays) + 1) / (10 * len(delays)))


def test_the_default_scan_is_never_taken_for_a_deployed_one(tmp_path):
    """0/50/0.1 ends just above 50 (501 delays): both conventions agree, no 1D names are read."""
    assert layout._deployed_axis_delays(501, -0.05, 50.05) is None
    delays = layout.scan_delays()
    assert layout._deployed_axis_delays(501, float(delays[0] - 0.05), float(delays[-1] + 0.05)) is None
    rows = layout.delay_rows(501, -0.05, 50.05, names=lambda: pytest.fail("names read for the default scan"))[1]
    assert rows == slice(1, 502)


def test_without_names_the_axis_is_the_current_writers(tmp_path):
    path = tmp_path / "deployed_no_1d_harvested.root"
    delays = write_deployed_file(path, (0.0, 50.0, 0.5), with_1d=False)
    maps = readers.read_maps(path)
    assert len(maps.delays) == len(delays)
    np.testing.assert_allclose(np.diff(maps.delays), 50.5 / 102)  # the centres: no names to say otherwise
