"""Aggregation at scale (issue 28): the aggregators run in a process of their own (a dying
one costs the aggregation, not the driver), read the finished tasks lazily, and write the
observables a batch of files at a time, keeping the rows of files that did not change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scanprod import make_production
from timecal_analysis import observables as obs
from timecal_analysis import store
from timecal_core.config.timerc import Timerc
from timecal_core.contract.plugins import get_registry
from timecal_core.driver.aggregation import run_aggregators
from timecal_core.plan.grid import plan_grid
from timecal_core.run.tasks import FinishedTasks, execute_task, finished_tasks


@pytest.fixture
def sleeper_production(tmp_path):
    script = get_registry().script("sleeper").item
    plan = plan_grid(script, {"index": [1, 2, 3]}, tmp_path / "prod")
    for spec in plan.tasks:
        execute_task(spec, str(plan.production_dir))
    return plan.production_dir


def test_aggregators_run_in_a_process_of_their_own(sleeper_production, tmp_path):
    lines = []
    timerc = Timerc(tmp_path / "timerc", {"paths": {"scans": str(tmp_path / "scans")}})
    assert run_aggregators(sleeper_production, "sleeper", None, timerc, out=lines.append)
    record = json.loads((sleeper_production / "results" / "aggregated.json").read_text())
    assert record == {"pid": record["pid"], "tasks": 3} and record["pid"] != os.getpid()
    assert any(line.startswith("aggregator summary: 3 tasks -> ") for line in lines), lines
    assert (sleeper_production / "results" / "summary.parquet").is_file()


def test_an_aggregation_that_dies_is_reported_and_the_caller_goes_on(sleeper_production, tmp_path):
    (sleeper_production / "results" / ".die-in-aggregation").touch()
    lines = []
    timerc = Timerc(tmp_path / "timerc", {"paths": {"scans": str(tmp_path / "scans")}})
    assert run_aggregators(sleeper_production, "sleeper", None, timerc, out=lines.append) is False
    assert any("aggregation stopped by signal 9" in line for line in lines), lines


def test_finished_tasks_are_listed_without_their_records_and_read_when_asked(sleeper_production):
    listing = FinishedTasks(sleeper_production)
    assert len(listing) == 3
    eager = sorted(finished_tasks(sleeper_production), key=lambda t: t.task_id)
    assert [t.task_id for t in listing] == [t.task_id for t in eager]  # task-id order
    assert listing[1] == eager[1] and listing[-1:] == eager[-1:]
    assert not any(isinstance(entry, dict) for entry in vars(listing).values())


def test_observables_are_written_a_batch_of_files_at_a_time(tmp_path, monkeypatch):
    """Each batch of BATCH_FILES files is one row group: the writer never holds more; a
    reader of some tasks opens only their row groups."""
    production = make_production(tmp_path / "prod", {"threshold": [5000.0, 6000.0, 7000.0, 8000.0, 9000.0]},
                                 every=25, with_1d=False)
    monkeypatch.setattr(store, "BATCH_FILES", 2)
    scan, report = obs.load_or_build(FinishedTasks(production), tmp_path / "scan")
    assert report.read == 5 and scan.file.metadata.num_row_groups == 3
    rows_per_file = 2 * 21
    assert [scan.file.metadata.row_group(g).num_rows for g in range(3)] == [2 * rows_per_file] * 2 + [rows_per_file]
    assert scan.row_groups_of([4]) == [2] and scan.row_groups_of([0, 1]) == [0]
    cube = scan.read(["efficiency"], [4, 0])
    wide = obs.build_table(finished_tasks(production))
    for position, task in enumerate((4, 0)):
        file = scan.tasks.loc[task, "file"]
        expected = wide[(wide["file"] == file) & (wide["mode"] == "Sampled")].sort_values("delay")
        assert list(cube.values["efficiency"][position, cube.modes.index("Sampled")]) == list(expected["efficiency"])
    # The parameters are stored once per task, not on every value row.
    assert "threshold" not in pq.read_schema(tmp_path / "scan" / "observables.parquet").names
    assert pq.read_table(tmp_path / "scan" / "tasks.parquet").num_rows == 5


def test_a_store_half_replaced_is_rebuilt(tmp_path):
    """The two files carry one build id: a writer killed between the two renames leaves a
    pair that no reader mixes, and the next build reads everything again."""
    production = make_production(tmp_path / "prod", {"threshold": [5000.0, 6000.0]}, every=25, with_1d=False)
    tasks = finished_tasks(production)
    obs.load_or_build(tasks, tmp_path / "scan")
    saved = (tmp_path / "scan" / "tasks.parquet").read_bytes()
    obs.load_or_build(tasks, tmp_path / "scan", rebuild=True)
    (tmp_path / "scan" / "tasks.parquet").write_bytes(saved)  # the old task table beside new values
    assert store.read_key(tmp_path / "scan") is None
    with pytest.raises(Exception, match="different builds"):
        store.Store(tmp_path / "scan")
    _, report = obs.load_or_build(tasks, tmp_path / "scan")
    assert report.read == 2
    assert Path(store.Store(tmp_path / "scan").tasks["file"].iloc[0]).is_file()
