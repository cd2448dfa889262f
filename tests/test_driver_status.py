"""Status formatting shared by the shell, the non-interactive lines and --status, and the
core summary aggregator, checked on hand-made inputs."""

from pathlib import Path

import pandas as pd

from timecal_core.contract.hookspecs import AggregationRequest, FinishedTask
from timecal_core.textformat import format_duration, render_table
from timecal_core.views.status_text import (ClusterInfo, StatusSnapshot, format_rate, progress_bar,
                                            render_line, render_status)
from timecal_analysis.summary import summary_aggregator


def test_durations_rates_and_bar():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(2 * 86400 + 61) == "2d 0:01:01"
    assert format_duration(None) == "?"
    assert format_rate(2.5) == "2.5 tasks/s"
    assert format_rate(0.05) == "3.0 tasks/min"
    assert format_rate(1 / 7200) == "0.5 tasks/h"
    assert progress_bar(1, 4, width=8) == "[##------]"


def test_status_block_and_line():
    snap = StatusSnapshot(counts={"pending": 50, "running": 10, "done": 30, "failed": 5,
                                  "error": 5, "cancelled": 0},
                          rate=2.0, eta=130.0, elapsed=60.0,
                          cluster=ClusterInfo(4, 5, 4, 8 * 1024**3, "http://127.0.0.1:1/status"),
                          batch_jobs={"RUNNING": 4, "PENDING": 1})
    block = render_status(snap)
    assert "tasks: 100" in block and "done 30 (30.0%)" in block and "error 5 (5.0%)" in block
    assert "cancelled" not in block  # empty states other than the main three are left out
    assert "30/100 30.0%" in block and "ETA 0:02:10" in block and "2.0 tasks/s" in block
    assert "4 workers of 5 requested, 4 threads, 8 GiB memory" in block
    assert "batch jobs: PENDING 1  RUNNING 4" in block
    line = render_line(snap)
    assert "done 30/100 (30.0%)" in line and "pending 50 running 10 failed 5 error 5" in line
    assert "\n" not in line


def test_table_alignment():
    text = render_table(("a", "bb"), [("xxx", 1), ("y", None)])
    assert text.splitlines() == ["a    bb", "---  --", "xxx  1", "y"]


def test_summary_parquet_has_one_row_per_task(tmp_path):
    tasks = tuple(FinishedTask(f"id{i}", {"threshold": 5000.0 + i, "output": "clash"},
                               tmp_path / f"d{i}", tmp_path / f"d{i}" / "out.root", 1.5 * i, i + 1)
                  for i in range(3))
    written = summary_aggregator().run(AggregationRequest(tmp_path, "sleeper", tasks, None))
    assert written == [tmp_path / "results" / "summary.parquet"]
    frame = pd.read_parquet(written[0])
    assert list(frame["task_id"]) == ["id0", "id1", "id2"]
    assert list(frame["threshold"]) == [5000.0, 5001.0, 5002.0]
    assert list(frame["param_output"]) == ["clash"] * 3  # a parameter named like a column
    assert list(frame["attempts"]) == [1, 2, 3] and list(frame["runtime"]) == [0.0, 1.5, 3.0]
    assert Path(frame["output"][1]) == tmp_path / "d1" / "out.root"
