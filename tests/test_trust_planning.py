"""Issue 11, the planning side, with real BXRun processes: a task is done only when its
result is complete; bad values, a missing cmsRun, a bad -o, a bad YAML or a full disk are
refused in one line (exit 2) before anything is written; a huge grid needs a yes.

CMSSW cannot be installed here: ``cmsRun`` is tests/standins/cmsrun.py (the cmsrun_standin
fixture puts it on PATH). The read-only and full-disk cases mount a small tmpfs, which only
root can do; elsewhere they are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_bxrun, write_timerc

SLEEPER = ("--script", "sleeper", "--interval", "1")


def one_error_line(res, *fragments):
    """Exit 2, one line on stderr (besides warnings), no traceback, each fragment in it."""
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if "warning:" not in ln]
    assert len(lines) == 1, res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def results_of(prod: Path) -> list[Path]:
    return sorted(p for p in (prod / "results").iterdir() if "__" in p.name and p.is_dir())


# --------------------------------------------------------------------------- done means done
def test_tampered_results_are_never_counted_and_are_rerun(timerc, tmp_path):
    """The adversarial copy of a finished production from the issue: every kind of fake or
    broken result is reported once per kind, moved aside (never deleted) and rerun, and the
    summary has exactly one row per task."""
    import pandas as pd

    grid = tmp_path / "grid.yml"
    grid.write_text("index: [0, 1, 2, 3, 4, 5]\nseconds: 0\n")
    prod = tmp_path / "prod"
    first = run_bxrun(*SLEEPER, "--yaml", grid, "-o", prod, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    dirs = {json.loads((d / "params.json").read_text())["params"]["index"]: d for d in results_of(prod)}
    assert sorted(dirs) == [0, 1, 2, 3, 4, 5]
    (dirs[0] / "out.txt").unlink()  # output deleted
    (dirs[1] / "params.json").unlink()  # no params.json
    record = json.loads((dirs[2] / "params.json").read_text())
    record["params"]["index"] = 99  # parameters that are not the plan's
    (dirs[2] / "params.json").write_text(json.dumps(record))
    (dirs[3] / "out.txt").write_text("")  # empty output
    (dirs[5] / "params.json").write_text("{not json")  # unreadable
    tid4 = dirs[4].name.rpartition("__")[2]
    shutil.copytree(dirs[4], prod / "results" / f"copy__{tid4}")  # a second copy of a done task
    (prod / "results" / "foreign__0123456789").mkdir()  # a directory of no task
    (prod / "results" / f"whatever__{tid4}").write_text("x")  # a plain file
    tampered = {d.name for d in dirs.values()} - {dirs[4].name}

    rebuilt = run_bxrun("--rebuild-ledger", "-o", prod)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "6 tasks, 1 done on disk, 5 pending" in rebuilt.stdout

    second = run_bxrun(*SLEEPER, "-o", prod, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert "5 new, 1 already done" in out
    assert "5 result directories are incomplete and will be rerun (moved to results/.stale/)" in out
    assert "1 directory is a second copy of a task and not counted" in out and f"copy__{tid4}" in out
    assert "1 directory does not belong to this grid" in out and "foreign__0123456789" in out
    assert "1 plain file is named like a result" in out
    stale = {p.name for p in (prod / "results" / ".stale").iterdir()}
    assert stale == tampered | {f"copy__{tid4}"}  # moved aside, nothing deleted
    assert (prod / "results" / "foreign__0123456789").is_dir()  # left where the user put it
    done = [d for d in results_of(prod) if (d / "params.json").is_file()]
    indices = sorted(json.loads((d / "params.json").read_text())["params"]["index"] for d in done)
    assert indices == [0, 1, 2, 3, 4, 5]
    assert all((d / "out.txt").stat().st_size > 0 for d in done)
    summary = pd.read_parquet(prod / "results" / "summary.parquet")
    assert len(summary) == 6 and summary["task_id"].nunique() == 6


def test_aggregators_count_a_task_once_and_only_when_complete(tmp_path):
    """tasks.finished_tasks (what aggregators read) applies the same rule without a plan."""
    from timecal_core.plan.completion import task_id_of
    from timecal_core.run.tasks import finished_tasks

    results = tmp_path / "results"

    def result(name, params, output=b"data", task_id=None):
        d = results / name
        d.mkdir(parents=True)
        tid = task_id or task_id_of(params)
        if output is not None:
            (d / "out.txt").write_bytes(output)
        (d / "params.json").write_text(json.dumps({"task_id": tid, "params": params, "output": "out.txt"}))
        return tid

    good = result(f"a__{task_id_of({'x': 1})}", {"x": 1})
    result(f"b__{good}", {"x": 1})  # a copy of it
    result(f"c__{task_id_of({'x': 2})}", {"x": 2}, output=None)  # output missing
    result(f"d__{task_id_of({'x': 3})}", {"x": 3}, output=b"")  # output empty
    result(f"e__{task_id_of({'x': 4})}", {"x": 4}, task_id="9999999999")  # another task's record
    (results / "f__0000000000").write_text("")  # a plain file
    assert [(t.task_id, t.directory.name) for t in finished_tasks(tmp_path)] == [(good, f"a__{good}")]


def test_run_reruns_an_incomplete_result_and_keeps_it_aside(timerc, tmp_path):
    prod = tmp_path / "prod"
    other = run_bxrun(*SLEEPER, "--run", "index=6", "-o", prod)  # another task in the same -o
    assert other.returncode == 0, other.stdout + other.stderr
    first = run_bxrun(*SLEEPER, "--run", "index=7", "-o", prod)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "does not belong" not in first.stdout  # the other --run's result is not noise
    (task,) = [d for d in results_of(prod) if "index7" in d.name]
    (task / "out.txt").unlink()
    again = run_bxrun(*SLEEPER, "--run", "index=7", "-o", prod)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already complete" not in again.stdout
    assert "1 result directory is incomplete and will be rerun" in again.stdout
    assert (task / "out.txt").stat().st_size > 0
    assert (prod / "results" / ".stale" / task.name / "params.json").is_file()  # kept, not deleted
    third = run_bxrun(*SLEEPER, "--run", "index=7", "-o", prod)
    assert "already complete" in third.stdout


# --------------------------------------------------------------------------- refused values
@pytest.mark.parametrize("grid, fragments", [
    ("threshold: -5\n", ["parameter 'threshold' got -5", "allowed: >= 0 electrons"]),
    ("nhits: [100, -5]\n", ["parameter 'nhits' got -5", "allowed: >= 0"]),
    ("offset_step: 0\n", ["parameter 'offset_step' got 0.0", "allowed: > 0 ns"]),
    ("hits: /nonexistent.root\n", ["parameter 'hits'", "/nonexistent.root", "allowed: an existing file"]),
    ("offset_min: [0, 30]\noffset_max: 20\n", ["parameter 'offset_max' got 20.0", "offset_min 30.0"]),
    ("mode: emulate\noffset: -3\n", ["parameter 'offset' got -3.0", "or -1"]),
    ("N: 0\n", ["parameter 'N' got 0", ">= 1"]),
])
def test_bad_cbcsim_values_are_refused_before_anything_is_written(timerc, tmp_path, grid, fragments):
    (tmp_path / "g.yml").write_text(grid)
    res = run_bxrun("--script", "cbcsim", "--yaml", tmp_path / "g.yml", "-o", tmp_path / "prod")
    one_error_line(res, *fragments)
    assert not (tmp_path / "prod").exists()  # no infiles, no ledger, no cluster logs


@pytest.fixture
def cmssw_area(tmp_path):
    cmssw = tmp_path / "cmssw"
    cmssw.mkdir()
    for cfg in ("PUCalibration_cfg.py", "Harvester_cfg.py"):
        (cmssw / cfg).write_text("# placeholder: the stand-in cmsRun only looks at the name\n")
    (tmp_path / "hs.txt").write_text("file:/store/hs.root\n")
    (tmp_path / "pu.txt").write_text("file:/store/pu.root\n")
    return cmssw


@pytest.mark.parametrize("grid, fragments", [
    ("threshold: [5000, -5]\n", ["parameter 'threshold' got -5", "allowed: >= 0 electrons"]),
    ("tofsmearing: -1\n", ["parameter 'tofsmearing' got -1", ">= 0 ns"]),
    ("pileup: -200\n", ["parameter 'pileup' got -200"]),
    ("mode: emulate\noffset: -2\n", ["parameter 'offset' got -2.0"]),
    ("N: [10, -3]\n", ["parameter 'N' got -3", ">= 1, or -1 (every event of the input files)"]),
    ("HSfile: nothere.txt\n", ["parameter 'HSfile'", "nothere.txt", "does not exist", "allowed: an existing file"]),
])
def test_bad_pucalibration_values_are_refused_before_anything_is_written(
        tmp_path, monkeypatch, cmssw_area, cmsrun_standin, grid, fragments):
    monkeypatch.setenv("TIMECAL_CONFIG", str(write_timerc(tmp_path / "cfg", cmssw=cmssw_area)))
    files = "PUfile: pu.txt\n" + ("" if "HSfile" in grid else "HSfile: hs.txt\n")
    (tmp_path / "g.yml").write_text(files + grid)
    res = run_bxrun("--script", "pucalibration", "--yaml", "g.yml", "-o", tmp_path / "prod", cwd=tmp_path)
    one_error_line(res, *fragments)
    assert not (tmp_path / "prod").exists()


def test_relative_paths_are_resolved_where_the_user_typed_them(tmp_path, monkeypatch, cmssw_area,
                                                               cmsrun_standin):
    """HSfile/PUfile relative to the current directory (as typed), used from each task's work
    directory, and recorded so that a rerun from another directory plans the same tasks."""
    monkeypatch.setenv("TIMECAL_CONFIG", str(write_timerc(tmp_path / "cfg", cmssw=cmssw_area)))
    (tmp_path / "g.yml").write_text("HSfile: hs.txt\nPUfile: pu.txt\nthreshold: [5000, 6000]\n")
    prod = tmp_path / "prod"
    res = run_bxrun("--script", "pucalibration", "--yaml", "g.yml", "-o", prod, "--interval", "1",
                    cwd=tmp_path, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    records = [json.loads((d / "params.json").read_text()) for d in results_of(prod)
               if (d / "params.json").is_file()]
    assert len(records) == 2
    assert {r["params"]["HSfile"] for r in records} == {str(tmp_path / "hs.txt")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_bxrun("-o", prod, "--interval", "1", cwd=elsewhere, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 new, 2 already done" in again.stdout


def test_relative_sim_hit_dump_for_cbcsim(timerc, tmp_path):
    """``hits=dump.root`` typed in the user's directory works although the step runs in the
    task's work directory (it used to fail there every time)."""
    import numpy as np
    from timecal_script_cbcsim.dump import write_dump
    from timecal_script_cbcsim.synthetic import SyntheticModel, generate

    write_dump(tmp_path / "dump.root", generate(SyntheticModel(nhits=500), np.random.default_rng(1)))
    res = run_bxrun("--script", "cbcsim", "--run", "hits=dump.root", "offset_step=5", "-o",
                    tmp_path / "prod", cwd=tmp_path, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    (done,) = results_of(tmp_path / "prod")
    assert json.loads((done / "params.json").read_text())["params"]["hits"] == str(tmp_path / "dump.root")


@pytest.mark.parametrize("init, fragment", [
    ("", "[cmssw] init is empty and cmsRun is not on PATH"),
    ("export SOMETHING=1", "[cmssw] init does not make cmsRun available"),
])
def test_missing_cmsrun_is_refused_once_naming_timerc(tmp_path, monkeypatch, cmssw_area, init, fragment):
    """No stand-in on PATH here: cmsRun is missing, as on a node where init is wrong."""
    rc = write_timerc(tmp_path / "cfg", cmssw=cmssw_area, init=init)
    monkeypatch.setenv("TIMECAL_CONFIG", str(rc))
    (tmp_path / "g.yml").write_text("HSfile: hs.txt\nPUfile: pu.txt\nthreshold: [5000, 6000]\n")
    res = run_bxrun("--script", "PUCalibration_cfg.py", "--yaml", "g.yml", "-o", tmp_path / "prod",
                    cwd=tmp_path)
    one_error_line(res, str(rc), fragment)
    assert not (tmp_path / "prod").exists()
    res = run_bxrun("--script", "PUCalibration_cfg.py", "--run", "HSfile=hs.txt", "PUfile=pu.txt",
                    "-o", tmp_path / "prod", cwd=tmp_path)
    one_error_line(res, fragment)
    assert not (tmp_path / "prod").exists()


def test_init_that_hangs_is_cut_short(tmp_path, monkeypatch, cmssw_area):
    from timecal_core.run import cmsrun_probe

    monkeypatch.setattr(cmsrun_probe, "CMSRUN_CHECK_SECONDS", 1)
    rc = write_timerc(tmp_path / "cfg", cmssw=cmssw_area, init="sleep 30")
    from timecal_core.config.timerc import load_timerc
    from timecal_core.contract.errors import UserError

    with pytest.raises(UserError, match=r"\[cmssw\] init did not finish within 1 s"):
        cmsrun_probe.check_cmsrun(load_timerc(rc))


def test_match_pattern_in_a_user_value_is_refused(timerc, tmp_path):
    res = run_bxrun(*SLEEPER, "--run", "message={match:*.txt}", "-o", tmp_path / "prod")
    one_error_line(res, "parameter 'message'", "{match:")
    assert not (tmp_path / "prod").exists()


# --------------------------------------------------------------------------- one-line errors
def test_output_naming_a_file(timerc, tmp_path):
    (tmp_path / "g.yml").write_text("index: [1, 2]\n")
    (tmp_path / "afile").write_text("mine\n")
    res = run_bxrun(*SLEEPER, "--yaml", tmp_path / "g.yml", "-o", tmp_path / "afile")
    one_error_line(res, str(tmp_path / "afile"), "is a file")
    assert (tmp_path / "afile").read_text() == "mine\n"
    res = run_bxrun(*SLEEPER, "--yaml", tmp_path / "g.yml", "-o", tmp_path / "afile" / "sub")
    one_error_line(res, "afile")


@pytest.mark.parametrize("content, fragments", [
    (b"index: [1, 2]\nmessage: caf\xe9\n", ["g.yml:2: not UTF-8 text (byte 0xe9)"]),
    (b"index: " + b"[" * 5000 + b"1" + b"]" * 5000 + b"\n", ["g.yml: nested too deeply"]),
    (b"index: [1, 2]\nseconds: 0\nindex: 3\n", ["g.yml:3: duplicate key 'index' (first given on line 1)"]),
])
def test_bad_yaml_is_one_line(timerc, tmp_path, content, fragments):
    (tmp_path / "g.yml").write_bytes(content)
    res = run_bxrun(*SLEEPER, "--yaml", tmp_path / "g.yml", "-o", tmp_path / "prod")
    one_error_line(res, *fragments)
    assert not (tmp_path / "prod").exists()


@pytest.fixture
def small_tmpfs(tmpfs_mount):
    """A 2 MB tmpfs mounted for this test (root only)."""
    return tmpfs_mount("2m")


def test_read_only_output(timerc, tmp_path, small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    (tmp_path / "g.yml").write_text("index: [1, 2]\n")
    res = run_bxrun(*SLEEPER, "--yaml", tmp_path / "g.yml", "-o", small_tmpfs / "prod")
    one_error_line(res, "read-only file system", str(small_tmpfs / "prod"))


def test_full_disk_when_writing_infiles_then_rerun(timerc, tmp_path, small_tmpfs):
    grid = tmp_path / "g.yml"
    grid.write_text("index: [1, 2]\nseconds: 0\n" + "# padding\n" * 60_000)  # ~600 kB to copy
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as fh:  # leave ~100 kB: the lock fits, the grid copy does not
        fh.write(b"\0" * (2 * 1024 * 1024 - 100 * 1024))
    prod = small_tmpfs / "prod"
    res = run_bxrun(*SLEEPER, "--yaml", grid, "-o", prod)
    line = one_error_line(res, "no space left on tmpfs", "free space and rerun: nothing done is lost")
    assert "writing " + str(prod / "infiles") in line
    assert not (prod / "infiles" / "config.yml").exists()  # no half-written grid left behind
    assert not list((prod / "infiles").glob("*.part"))
    filler.unlink()
    again = run_bxrun(*SLEEPER, "--yaml", grid, "-o", prod, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 new, 0 already done" in again.stdout
    assert len([d for d in results_of(prod) if (d / "params.json").is_file()]) == 2


# --------------------------------------------------------------------------- a huge grid
def test_a_huge_grid_needs_a_yes(timerc, tmp_path):
    grid = tmp_path / "g.yml"
    grid.write_text("index: [" + ", ".join(map(str, range(100_001))) + "]\n")
    res = run_bxrun(*SLEEPER, "--yaml", grid, "-o", tmp_path / "prod", timeout=300)
    one_error_line(res, "100,001 tasks (more than 100,000)", "the ledger will take about",
                   "the driver about", "rerun with --yes")
    assert not (tmp_path / "prod").exists()
    res = run_bxrun(*SLEEPER, "--yaml", grid, "-o", tmp_path / "prod", "--debug", input="")
    one_error_line(res, "rerun with --yes")  # --debug holds the plan: the same question
    res = run_bxrun(*SLEEPER, "--yaml", grid, "-o", tmp_path / "prod", "--yes", "--debug",
                    input="print('NTASKS', len(plan.tasks))\n", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "NTASKS 100001" in res.stdout


def test_a_huge_grid_asks_in_a_terminal(timerc, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    grid = tmp_path / "g.yml"
    grid.write_text("index: [" + ", ".join(map(str, range(100_001))) + "]\n")
    from conftest import bxrun_path

    child = pexpect.spawn(bxrun_path(), [*SLEEPER, "--yaml", str(grid), "-o", str(tmp_path / "prod")],
                          env=dict(os.environ), encoding="utf-8", timeout=120)
    child.expect(r"100,001 tasks .* Continue\? \[y/N\] ")
    child.sendline("n")
    child.expect("not confirmed, nothing written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert not (tmp_path / "prod").exists()
