"""Grid planning: cartesian product, canonical values, errors before anything is written,
deterministic identities independent of YAML order, completion read from disk."""

import json

import pytest

from conftest import run_bxrun
from timecal_core.contract.errors import UserError
from timecal_core.plan.grid import SEPARATOR, plan_grid
from timecal_core.contract.plugins import get_registry


@pytest.fixture
def pucal():
    return get_registry().script("PUCalibration_cfg.py").item


@pytest.fixture
def hsfiles(tmp_path):
    hs, pu = tmp_path / "hs.txt", tmp_path / "pu.txt"
    hs.write_text("file:hs.root\n")
    pu.write_text("file:pu.root\n")
    return {"HSfile": str(hs), "PUfile": str(pu)}


def test_cartesian_product_with_defaults(pucal, hsfiles, tmp_path):
    plan = plan_grid(pucal, {"threshold": [4000, 5000, 6000], "pt": [0, 2], "N": 100, **hsfiles}, tmp_path)
    assert len(plan.tasks) == 6
    points = {(t.params["threshold"], t.params["pt"]) for t in plan.tasks}
    assert points == {(a, b) for a in (4000.0, 5000.0, 6000.0) for b in (0.0, 2.0)}
    assert all(t.params["N"] == 100 and t.params["pileup"] == 200 and t.params["mode"] == "scan"
               for t in plan.tasks)
    assert len({t.task_id for t in plan.tasks}) == 6 and len({t.dirname for t in plan.tasks}) == 6


def test_equal_values_in_any_spelling_are_one_point(pucal, hsfiles, tmp_path):
    with pytest.warns(UserWarning, match="repeats"):
        plan = plan_grid(pucal, {"threshold": [5000, 5000.0, "5000"], **hsfiles}, tmp_path)
    assert len(plan.tasks) == 1
    assert plan.tasks[0].params["threshold"] == 5000.0


def test_identity_independent_of_yaml_order_and_spelling(pucal, hsfiles, tmp_path):
    a = plan_grid(pucal, {"threshold": [4000, 5000], "pileup": [0, 200], **hsfiles}, tmp_path)
    b = plan_grid(pucal, {**hsfiles, "pileup": ["200", 0.0], "threshold": ["5000.0", 4e3]}, tmp_path)
    assert {(t.task_id, t.dirname) for t in a.tasks} == {(t.task_id, t.dirname) for t in b.tasks}


def test_dirnames_are_readable(pucal, hsfiles, tmp_path):
    plan = plan_grid(pucal, {"threshold": 4500, "tofsmearing": 0.5, **hsfiles}, tmp_path)
    (task,) = plan.tasks
    assert task.dirname.startswith("threshold4500p0_tofsmearing0p5" + SEPARATOR)
    assert task.dirname.endswith(task.task_id)


@pytest.mark.parametrize("grid, message", [
    ({"treshold": 5000}, "unknown parameter 'treshold'; allowed: N, pileup, pt, threshold"),
    ({"threshold": "abc"}, "parameter 'threshold' expects a number, got 'abc'"),
    ({"N": 1.5}, "parameter 'N' expects an integer, got 1.5"),
    ({"threshold": []}, "parameter 'threshold' has an empty list"),
    ({"subdet": ["ALL", "BXX"]}, "parameter 'subdet' got 'BXX'; allowed: ALL, BLL, BLH"),
    ({"mode": "fast"}, "parameter 'mode' got 'fast'; allowed: scan, emulate"),
])
def test_bad_grids_are_clear_errors(pucal, hsfiles, tmp_path, grid, message):
    with pytest.raises(UserError) as err:
        plan_grid(pucal, {**hsfiles, **grid}, tmp_path, source="scan.yml")
    assert message in str(err.value) and str(err.value).startswith("scan.yml: ")


def test_required_and_missing_files(pucal, hsfiles, tmp_path):
    with pytest.raises(UserError, match="parameter 'HSfile' is required"):
        plan_grid(pucal, {"PUfile": hsfiles["PUfile"]}, tmp_path)
    with pytest.raises(UserError, match="file '/no/such.txt' does not exist"):
        plan_grid(pucal, {"HSfile": "/no/such.txt", "PUfile": hsfiles["PUfile"]}, tmp_path)


def test_done_tasks_are_read_from_disk(pucal, hsfiles, tmp_path):
    plan = plan_grid(pucal, {"threshold": [1, 2, 3], **hsfiles}, tmp_path)
    done = plan.tasks[1]
    (tmp_path / "results" / done.dirname).mkdir(parents=True)
    import uproot

    with uproot.recreate(tmp_path / "results" / done.dirname / "out.root") as f:  # what verify reads
        f["DQMData/info"] = "a harvested file"
    (tmp_path / "results" / done.dirname / "params.json").write_text(json.dumps(
        {"task_id": done.task_id, "params": dict(done.params), "output": "out.root"}))
    (tmp_path / "results" / ".tmp" / (plan.tasks[0].dirname + ".abc")).mkdir(parents=True)  # in flight
    again = plan_grid(pucal, {"threshold": [1, 2, 3], **hsfiles}, tmp_path)
    assert again.done == {done.task_id}
    assert [t.task_id for t in again.pending] == [plan.tasks[0].task_id, plan.tasks[2].task_id]
    assert plan_grid(pucal, {"threshold": 1, **hsfiles}, tmp_path / "nowhere").done == set()


def test_bxrun_prints_counts_and_writes_nothing_on_bad_grid(timerc, tmp_path):
    (tmp_path / "bad.yml").write_text("seconds: [0, abc]\n")
    out = tmp_path / "prod"
    res = run_bxrun("--script", "sleeper", "--yaml", tmp_path / "bad.yml", "-o", out)
    assert res.returncode == 2
    assert "parameter 'seconds' expects a number, got 'abc'" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
    (tmp_path / "good.yml").write_text("index: [1, 2, 3]\n")
    res = run_bxrun("--script", "sleeper", "--yaml", tmp_path / "good.yml", "-o", out, "--debug", input="")
    assert res.returncode == 0, res.stderr
    assert "3 tasks" in res.stdout and "3 new, 0 already done" in res.stdout
    assert not out.exists()  # --debug submits and writes nothing


def test_debug_shell_holds_the_plan(timerc, tmp_path):
    (tmp_path / "g.yml").write_text("index: [1, 2]\nseconds: 0.5\n")
    res = run_bxrun("--script", "sleeper", "--yaml", tmp_path / "g.yml", "-o", tmp_path / "p", "--debug",
                    input="print('NTASKS', len(plan.tasks), sorted(t.params['index'] for t in plan.tasks))\n")
    assert res.returncode == 0, res.stderr
    assert "NTASKS 2 [1, 2]" in res.stdout


def test_task_ids_are_the_hash_of_the_canonical_parameters(pucal, hsfiles, tmp_path):
    """The planner's fast per-axis fragments give the id results.task_id_of computes from a
    params.json record (floats, ints, strings, paths)."""
    from timecal_core.plan.completion import task_id_of

    plan = plan_grid(pucal, {"threshold": [4000, 5000.5], "subdet": ["ALL", "BHH"], "N": [1, 7],
                             **hsfiles}, tmp_path)
    assert all(t.task_id == task_id_of(json.loads(json.dumps(dict(t.params)))) for t in plan.tasks)
