"""Issue 22, results lost or miscounted (defects 1-4), with real BXRun processes: a result
folder replaced by a symbolic link, a truncated ROOT output, two productions of one name,
a ledger with a zeroed page. Every rerun must end with each result exactly once, on disk
where it belongs and counted once in the ledger and summary.parquet, or stop in one line
before anything is touched."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import ledger_states, run_bxrun

SLEEPER = ("--script", "sleeper", "--interval", "1")


def results_of(prod: Path) -> dict[int, Path]:
    """index -> result directory (real directories only) of a sleeper production."""
    out = {}
    for d in (prod / "results").iterdir():
        if "__" in d.name and d.is_dir() and not d.is_symlink() and (d / "params.json").is_file():
            out[json.loads((d / "params.json").read_text())["params"]["index"]] = d
    return out


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if "warning:" not in ln]
    assert len(lines) == 1, text
    return lines[0]


# --------------------------------------------------------------------------- 1. a symlink
def test_symlinked_result_dir_is_rerun_into_the_production_and_counted_once(timerc, tmp_path):
    """Defect 1: a result folder replaced by a symbolic link to a folder outside the
    production. The rerun must not follow it (nor count it, nor write through it): the link
    is moved aside, the task reruns, its new output lands in a real directory of the
    production, and ledger and summary agree on every task exactly once."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [0, 1, 2, 3]\n")
    prod = tmp_path / "prod"
    first = run_bxrun(*SLEEPER, "--yaml", grid, "-o", prod, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    moved = results_of(prod)[1]
    outside = tmp_path / "elsewhere" / moved.name
    outside.parent.mkdir()
    shutil.move(moved, outside)
    os.symlink(outside, moved)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}

    for attempt in (1, 2):  # the second rerun finds everything done: nothing to report
        again = run_bxrun(*SLEEPER, "-o", prod, timeout=180)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "production complete: 4 tasks done" in again.stdout
        if attempt == 1:
            assert "1 entry stands where a result directory goes" in again.stdout
            assert f"a symbolic link to {outside}" in again.stdout
        else:
            assert "0 new, 4 already done" in again.stdout
            assert "stands where" not in again.stdout and "lost from disk" not in again.stdout

    done = results_of(prod)
    assert sorted(done) == [0, 1, 2, 3]
    assert not moved.is_symlink() and (moved / "out.txt").read_text().startswith("{")
    assert os.readlink(prod / "results" / ".stale" / moved.name) == str(outside)  # kept aside
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before  # never written through
    states = ledger_states(prod)
    assert sorted(s for _, s, _ in states.values()) == ["done"] * 4
    summary = pd.read_parquet(prod / "results" / "summary.parquet")
    assert sorted(summary["index"]) == [0, 1, 2, 3]
    assert all(Path(f).parent.parent == prod / "results" for f in summary["output"])


def test_a_symlink_put_where_a_running_task_will_land_is_moved_aside(tmp_path):
    """The worker's side of defect 1: a link created while the task runs (after the planner
    looked) is moved aside when the task renames its result into place, and the result is
    the task's own, in a real directory."""
    from timecal_core.plan.grid import TaskSpec
    from timecal_core.plan.completion import task_id_of
    from timecal_core.run.tasks import execute_task

    params = {"index": 7, "seconds": 0.0, "exit_code": 0, "flaky": "", "message": "", "mode": "sleep",
              "warm": False, "children": 0, "level": 0, "fail_index_min": -1, "fail_level_min": 0,
              "allocate": 0, "garbled": False}
    tid = task_id_of(params)
    spec = TaskSpec(tid, f"index7__{tid}", params, "sleeper")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").mkdir()
    os.symlink(elsewhere, tmp_path / "results" / spec.dirname)
    result = execute_task(spec, str(tmp_path))
    final = tmp_path / "results" / spec.dirname
    assert not result.reused and not final.is_symlink() and Path(result.output).parent == final
    assert list(elsewhere.iterdir()) == []
    assert os.readlink(tmp_path / "results" / ".stale" / spec.dirname) == str(elsewhere)


# --------------------------------------------------------------------------- 2. unreadable output
def test_truncated_root_output_is_not_done_and_is_rerun(timerc, tmp_path):
    """Defect 2: a harvested ROOT file truncated to 100 bytes exists and is not empty, but
    it is not a result: the rerun says so in one line, moves it aside, reruns the task, and
    the observables aggregator then reads every file (no failure, exit 0)."""
    grid = tmp_path / "grid.yml"
    grid.write_text("threshold: [4000, 6000]\nnhits: 200\n")
    prod = tmp_path / "prod"
    first = run_bxrun("--script", "cbcsim", "--interval", "1", "--yaml", grid, "-o", prod, timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    (root,) = sorted((prod / "results").glob("threshold4000*/*_harvested.root"))
    with open(root, "r+b") as fh:
        fh.truncate(100)

    again = run_bxrun("--script", "cbcsim", "--interval", "1", "-o", prod, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 new, 1 already done" in again.stdout
    assert "1 result holds an unreadable output" in again.stdout
    assert "truncated: 100 bytes of the" in again.stdout
    assert "failed" not in again.stdout + again.stderr
    assert root.stat().st_size > 100_000
    kept = prod / "results" / ".stale" / root.parent.name / root.name
    assert kept.stat().st_size == 100  # kept aside, not deleted
    summary = pd.read_parquet(prod / "results" / "summary.parquet")
    assert sorted(summary["threshold"]) == [4000.0, 6000.0]


def test_a_task_whose_output_its_script_refuses_fails_and_is_not_done(timerc, tmp_path):
    """The worker applies the script's verify before a result is renamed into place: an
    unreadable output is a failed attempt saying why, never a done task."""
    prod = tmp_path / "prod"
    res = run_bxrun(*SLEEPER, "--run", "index=1", "garbled=1", "-o", prod)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "out.txt is not readable: does not start with '{'" in res.stderr
    assert not [d for d in (prod / "results").iterdir() if "__" in d.name]


def test_root_top_keys_reads_what_uproot_reads(tmp_path):
    """The cheap check (header and key list, a few hundred bytes) against uproot's full
    reader, on files written by ROOT itself and by uproot (update mode included), and the
    damaged ones it must refuse."""
    import uproot

    from timecal_core.cms.root_check import root_file_problem, root_top_keys

    ROOT = pytest.importorskip("ROOT")
    made = tmp_path / "root.root"
    f = ROOT.TFile(str(made), "RECREATE")
    for name in ("h0", "h" + "x" * 300):  # a name longer than 255 bytes has a long length
        h = ROOT.TH1F(name, "t", 10, 0, 1)
        h.Fill(0.5)
        h.Write()
    f.mkdir("DQMData").cd()
    ROOT.TH1F("inner", "t", 10, 0, 1).Write()
    f.Close()
    written = tmp_path / "uproot.root"
    with uproot.recreate(written) as g:
        g["a"] = "text"
        g["b/c"] = "x"
    with uproot.update(written) as g:
        g["z"] = "more"
    for path in (made, written):
        assert root_top_keys(path) == [k.split(";")[0] for k in uproot.open(path).keys(recursive=False)]
    assert root_file_problem(made, ("DQMData",)) is None
    assert root_file_problem(made, ("DQMData", "cbcsim_info")).startswith("holds no cbcsim_info")
    data = made.read_bytes()
    for name, content, reason in (("cut.root", data[:30], "truncated: 30 bytes, smaller than"),
                                  ("cut2.root", data[:100], "truncated: 100 bytes of the"),
                                  ("half.root", data[:len(data) // 2], "truncated:"),
                                  ("text.root", b"x" * 500, "not a ROOT file")):
        (tmp_path / name).write_bytes(content)
        assert root_file_problem(tmp_path / name).startswith(reason)


# --------------------------------------------------------------------------- 3. one name, two places
def test_productions_of_the_same_name_keep_their_own_scan_outputs(tmp_path):
    """Defect 3: ``-o a/same`` and ``-o b/same`` each get their own observables table (the
    second used to replace the first), and ``plotScan -i a/same`` finds its own."""
    prod_root = tmp_path / "prod"
    scans = tmp_path / "scans"
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {prod_root}\nscans = {scans}\n[local]\nworkers = 2\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc)}
    tables = {}
    for sub, threshold in (("a", 4000), ("b", 8000)):
        grid = tmp_path / f"{sub}.yml"
        grid.write_text(f"threshold: {threshold}\nnhits: 200\n")
        res = run_bxrun("--script", "cbcsim", "--interval", "1", "--yaml", grid, "-o", f"{sub}/same",
                        env=env, timeout=240)
        assert res.returncode == 0, res.stdout + res.stderr
        tables[sub] = scans / sub / "same" / "observables.parquet"
        assert f"aggregator observables: 1 tasks -> {tables[sub]}" in res.stdout
    # the task table holds the parameters (issue 28), beside the values
    assert {float(pd.read_parquet(tables[s].with_name("tasks.parquet"))["threshold"].iloc[0])
            for s in "ab"} == {4000.0, 8000.0}
    # an absolute -o outside [paths] production gets its name and a short hash of its path
    outside = tmp_path / "elsewhere" / "same"
    grid = tmp_path / "c.yml"
    grid.write_text("threshold: 6000\nnhits: 200\n")
    res = run_bxrun("--script", "cbcsim", "--interval", "1", "--yaml", grid, "-o", outside, env=env,
                    timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    (third,) = [p for p in scans.iterdir() if p.name.startswith("same-")]
    assert (third / "observables.parquet").is_file()
    assert float(pd.read_parquet(third / "tasks.parquet")["threshold"].iloc[0]) == 6000.0
    plot = __import__("subprocess").run(
        [str(Path(os.sys.executable).with_name("plotScan")), "-i", "a/same", "--only", "efficiency",
         "--formats", "png"], env=env, capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr
    assert "reused (1 file(s) unchanged)" in plot.stderr and f"in {tables['a'].parent}" in plot.stderr


# --------------------------------------------------------------------------- 4. a damaged ledger
def _zero_page(path: Path, page: int) -> None:
    with sqlite3.connect(path) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as fh:
        fh.seek(size * (page - 1))
        fh.write(b"\0" * size)


@pytest.mark.parametrize("table, left", [("tasks", 2), ("events", 0), ("attempts", 2), ("tasks", 0)],
                         ids=["tasks-some-left", "events-all-done", "attempts-some-left", "tasks-all-done"])
def test_a_damaged_ledger_stops_a_rerun_with_the_status_line(timerc, tmp_path, table, left):
    """Defect 4: a ledger with a zeroed 4 KB page (the root page of one of its tables).
    ``--status`` says so in one line; a rerun stops with that same line, exit non-zero,
    before anything is run or written (results and the damaged ledger untouched), whether
    tasks are left or not."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\nmessage: " + "m" * 400 + "\n")
    prod = tmp_path / "prod"
    first = run_bxrun(*SLEEPER, "--yaml", grid, "-o", prod, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    for index in list(results_of(prod))[:left]:
        shutil.rmtree(results_of(prod)[index])
    ledger = prod / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    _zero_page(ledger, root)
    damaged = ledger.read_bytes()
    on_disk = sorted(p.name for p in (prod / "results").iterdir())

    status = run_bxrun("--status", "-o", prod)
    assert status.returncode == 2, status.stdout + status.stderr
    line = one_line(status.stderr)
    assert "ledger" in line and f"BXRun --rebuild-ledger -o {prod}" in line

    again = run_bxrun(*SLEEPER, "-o", prod, timeout=180)
    assert again.returncode == 2, again.stdout + again.stderr
    assert one_line(again.stderr) == line
    assert "internal error" not in again.stdout + again.stderr
    assert "production complete" not in again.stdout
    assert ledger.read_bytes() == damaged
    assert sorted(p.name for p in (prod / "results").iterdir()) == on_disk

    rebuilt = run_bxrun("--rebuild-ledger", "-o", prod)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    final = run_bxrun(*SLEEPER, "-o", prod, timeout=180)
    assert final.returncode == 0 and "production complete: 12 tasks done" in final.stdout
