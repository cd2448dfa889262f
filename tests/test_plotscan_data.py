"""The notebook helper: load, pick an observable, slice by names as people write them,
numpy arrays, and drawing on a caller's axis."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from scanprod import make_production  # noqa: E402
from timecal_analysis.data import ScanData  # noqa: E402
from timecal_analysis.observables import TABLE_NAME, load_or_build  # noqa: E402
from timecal_core.contract.errors import UserError  # noqa: E402
from timecal_core.run.tasks import finished_tasks  # noqa: E402


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    production = make_production(root / "prod", {"threshold": [5800.0, 7000.0, 8000.0],
                                                  "thresholdsmearing": [0.0, 500.0]}, every=25)
    load_or_build(finished_tasks(production), root / "scan" / TABLE_NAME)
    return root / "scan"


def raw_rows(scan_dir, mode, **fixed) -> pd.DataFrame:
    table = pd.read_parquet(scan_dir / TABLE_NAME).join(pd.read_parquet(scan_dir / "tasks.parquet"), on="task")
    mask = table["mode"] == mode
    for name, value in fixed.items():
        mask &= table[name] == value
    return table[mask].sort_values("delay")


def test_slice_by_names_with_spaces_gives_the_curve(scan_dir):
    data = ScanData.load(scan_dir, labels={"thresholdsmearing": "Smeared threshold [e]"})
    oot = data.observable("Out-of-time fraction", mode="Latched")
    for name in ("Threshold smearing", "threshold_smearing", "Smeared threshold", "thresholdsmearing"):
        delays, values, errors = oot.slice({"threshold": 7000, name: 500}).arrays()
        expected = raw_rows(scan_dir, "Latched", threshold=7000.0, thresholdsmearing=500.0)
        np.testing.assert_array_equal(delays, expected["delay"])
        np.testing.assert_array_equal(values, expected["out_of_time"])
        np.testing.assert_array_equal(errors, expected["out_of_time_error"])
    assert data.values("Threshold") == [5800.0, 7000.0, 8000.0]


def test_several_curves_need_a_slice(scan_dir):
    eff = ScanData.load(scan_dir / TABLE_NAME).observable("efficiency")
    with pytest.raises(UserError, match="the slice holds 3 curves; fix threshold with slice"):
        eff.slice(thresholdsmearing=0).arrays()
    with pytest.raises(UserError, match="unknown parameter 'threshould'; the table has: .*threshold"):
        eff.slice(threshould=5800)
    with pytest.raises(UserError, match="threshold = 9999 selects nothing; values: 5800.0, 7000.0, 8000.0"):
        eff.slice(threshold=9999)


def test_plots_on_a_given_axis(scan_dir):
    eff = ScanData.load(scan_dir).observable("Efficiency", mode="Sampled").slice({"Threshold smearing": 0})
    fig, (left, right) = plt.subplots(1, 2)
    eff.plot(left)
    assert len(left.lines) == 3
    for line, threshold in zip(left.lines, (5800.0, 7000.0, 8000.0)):
        np.testing.assert_array_equal(line.get_ydata(), raw_rows(scan_dir, "Sampled", threshold=threshold,
                                                                 thresholdsmearing=0.0)["efficiency"])
    eff.plot_map(right, "threshold")
    mesh = (right.collections + right.images)[0]  # uniform cells: an image
    values, delays, matrix, _ = eff.matrix("threshold")
    cells = np.asarray(mesh.get_array())  # each value repeated into a block of pixels (draw_map)
    rows, columns = cells.shape[0] // matrix.shape[0], cells.shape[1] // matrix.shape[1]
    np.testing.assert_array_equal(cells, np.repeat(np.repeat(matrix, rows, axis=0), columns, axis=1))
    assert right.get_ylabel() == "Threshold [e]"
    plt.close(fig)
