"""plotScan on big grids (issue 28): a bounded default figure set (every combination while
the others make few slices; beyond, a reference slice and each other parameter at its
extremes), ``--select`` in the monitor's selection language, values read once per
observable for the tasks the figures show, and an ETA measured from the first figures."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import uproot

from scanprod import make_production
from timecal_analysis import figureset
from timecal_analysis.plotscan import Progress, main


def big_grid(thresholds=300):
    return {"threshold": [3000.0 + 10 * i for i in range(thresholds)],
            "thresholdsmearing": [0.0, 250.0, 500.0, 750.0, 1000.0],
            "tofsmearing": [0.0, 0.5, 1.0, 1.5, 2.0], "pileup": [140, 200, 250, 300]}


def test_few_slices_are_all_drawn():
    grid = {"threshold": [4000.0, 5800.0, 8000.0], "tofsmearing": [0.0, 2.0], "pileup": [0, 200]}
    assert figureset.slices(grid, "threshold") == [
        {"tofsmearing": t, "pileup": p} for t in (0.0, 2.0) for p in (0, 200)]


def test_a_big_grid_gets_a_reference_slice_and_each_other_parameter_at_its_extremes():
    grid = big_grid()
    chosen = figureset.slices(grid, "threshold")
    reference = {"thresholdsmearing": 500.0, "tofsmearing": 1.0, "pileup": 200}  # the lower middle of 4
    assert chosen[0] == reference and len(chosen) == 1 + 2 * 3
    for s in chosen[1:]:
        (changed,) = [p for p in s if s[p] != reference[p]]  # one parameter at a time...
        assert s[changed] in (grid[changed][0], grid[changed][-1])  # ...at an extreme
    # Bounded by the number of scanned parameters, whatever the number of values.
    for thresholds in (30, 300, 1000):
        grid = big_grid(thresholds)
        k = len(grid)
        assert sum(len(figureset.slices(grid, p)) for p in grid) <= k * (2 * k - 1)
    assert len(figureset.slices(grid, "pileup", every=True)) == math.prod(len(grid[p]) for p in grid if p != "pileup")
    assert figureset.describe_choice(big_grid(10), list(grid), False).endswith("(--all-slices for every combination: 750)")


def test_missing_grid_points_leave_their_curve_out():
    grid = {"threshold": [1.0, 2.0, 3.0], "pileup": [0, 200]}
    have = [(1.0, 0), (2.0, 0), (1.0, 200)]  # (3, *) and (2, 200) missing
    index = figureset.GridIndex(["threshold", "pileup"], list(zip(*have)), [10, 11, 12])
    panels = {(p.parameter, tuple(p.fixed.items())): p for p in index.panels(grid, ["Sampled"])}
    assert panels[("threshold", (("pileup", 0),))].values == (1.0, 2.0)
    assert panels[("threshold", (("pileup", 0),))].tasks == (10, 11)
    assert panels[("pileup", (("threshold", 1.0),))].tasks == (10, 12)
    assert ("pileup", (("threshold", 3.0),)) not in panels


def test_the_eta_is_measured_from_the_first_figures(monkeypatch):
    """Ten seconds of start-up before the first figure, then a figure a second: the ETA
    says a second per remaining figure (the average since the start would say 11 s), and
    nothing until it has measured a few."""
    now = [0.0]
    monkeypatch.setattr("timecal_analysis.plotscan.time.monotonic", lambda: now[0])
    stream = io.StringIO()
    progress = Progress("figures", stream=stream, every=0)
    progress(0, 100)
    now[0] = 10.0
    progress(1, 100)
    now[0] = 11.0
    progress(2, 100)
    assert stream.getvalue().splitlines()[-1].endswith("ETA ?")
    now[0] = 12.0
    progress(3, 100)
    assert stream.getvalue().splitlines()[-1].endswith("ETA 1:37")  # 97 figures x 1 s


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("figureset")
    make_production(root / "production" / "scan1", {"threshold": [5800.0, 7000.0, 8000.0],
                                                    "thresholdsmearing": [0.0, 500.0]}, every=25, with_1d=False)
    (root / "timerc").write_text(f"[paths]\nproduction = {root / 'production'}\nscans = {root / 'scans'}\n")
    return root


@pytest.fixture
def timerc(env, monkeypatch):
    monkeypatch.setenv("TIMECAL_CONFIG", str(env / "timerc"))
    return env


def test_select_plots_the_slices_the_terms_choose(timerc, capsys):
    assert main(["-i", "scan1", "-o", "sel", "--select", "threshold>=7000 thresholdsmearing=0",
                 "--formats", "root", "--only", "efficiency"]) == 0
    plots = timerc / "scans" / "sel" / "plots" / "efficiency"
    # thresholdsmearing is fixed by the selection: only threshold is scanned, at that slice.
    assert sorted(p.name for p in plots.rglob("*.root")) == [
        f"{kind}_{mode}_thresholdsmearing_0p0.root" for kind in ("curves", "map") for mode in ("Latched", "Sampled")]
    with uproot.open(plots / "threshold" / "curves_Sampled_thresholdsmearing_0p0.root") as f:
        assert sorted(f.keys()) == ["threshold_7000;1", "threshold_8000;1"]


@pytest.mark.parametrize("words, expected", [
    ("thresold>=7000", r"--select: 'thresold>=7000': 'thresold' is not a parameter of this production"),
    ("threshold>=90000", r"--select threshold>=90000: selects no finished task"),
    ("subdet>ALL", r"'subdet>ALL': > needs a numeric parameter"),
    ("5800", r"--select '5800': not a filter term"),
])
def test_a_bad_selection_is_one_line(timerc, capsys, words, expected):
    assert main(["-i", "scan1", "-o", "bad", "--select", words]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("plotScan: error: ") and re.search(expected, err), err


def test_values_are_read_once_per_observable_for_the_tasks_shown(timerc, monkeypatch, capsys):
    """Grouped once: one read of the store per observable, of the tasks its figures show
    (the selection leaves 2 of 6), and each figure's numbers are those tasks' rows."""
    from timecal_analysis import store

    reads = []
    real = store.Store.read

    def counting(self, columns, tasks):
        tasks = list(tasks)
        reads.append((tuple(columns), sorted(tasks)))
        return real(self, columns, tasks)

    monkeypatch.setattr(store.Store, "read", counting)
    assert main(["-i", "scan1", "-o", "once", "--select", "threshold>=7000", "thresholdsmearing=500",
                 "--formats", "root", "--observables", "efficiency", "mean"]) == 0
    assert [columns for columns, _ in reads] == [("efficiency",), ("mean", "mean_error")]
    scan = store.Store(timerc / "scans" / "once")
    chosen = scan.tasks[(scan.tasks["threshold"] >= 7000) & (scan.tasks["thresholdsmearing"] == 500)].index
    assert all(tasks == sorted(chosen) for _, tasks in reads) and len(chosen) == 2
    wide = scan.table()
    with uproot.open(timerc / "scans/once/plots/mean/threshold/curves_Latched_thresholdsmearing_500p0.root") as f:
        for threshold in (7000.0, 8000.0):
            rows = wide[(wide["threshold"] == threshold) & (wide["thresholdsmearing"] == 500.0)
                        & (wide["mode"] == "Latched")].sort_values("delay")
            h = f[f"threshold_{int(threshold)}"]
            np.testing.assert_array_equal(h.values(), np.nan_to_num(rows["mean"].to_numpy()))
            np.testing.assert_array_equal(h.errors(), np.nan_to_num(rows["mean_error"].to_numpy()))
