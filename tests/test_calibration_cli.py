"""runCalibration end to end on real ROOT files (written by uproot, read back by the tool):
scenarios, production tasks as inputs, the evaluator cache, plugins, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration_support import make_hits, write_file
from timecal_analysis import runcalibration
from timecal_analysis.evaluators import HistogramStack, build_evaluator, builtin_methods
from timecal_core.cms.harvested_layout import scan_delays
from timecal_core.contract.hookspecs import EvaluatorMethod, hookimpl
from timecal_core.contract.plugins import build_registry, get_registry, make_plugin_manager

LINE = re.compile(r"^delay = (\d+\.\d\d) \+(\d+\.\d\d) -(\d+\.\d\d) ns")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    template = write_file(root / "templates.root", *make_hits(100_000, 1), scan_delays())
    scan = write_file(root / "tests.root", *make_hits(5_000, 2), scan_delays())
    emulate = write_file(root / "BXHistEmulateDelay_23p45_subdet_ALL_harvested.root",
                         *make_hits(5_000, 3), [23.45])
    return {"template": template, "scan": scan, "emulate": emulate, "dir": root}


@pytest.fixture()
def timerc(tmp_path, monkeypatch):
    rc = tmp_path / "timerc"
    rc.write_text(f"[paths]\ncalibration = {tmp_path / 'calibration'}\n"
                  f"production = {tmp_path / 'production'}\n")
    monkeypatch.setenv("TIMECAL_CONFIG", str(rc))
    return tmp_path


def _yaml(path, text):
    path.write_text(text)
    return str(path)


def test_scenarios_give_tables_plots_and_an_index(files, timerc, capsys):
    yml = _yaml(files["dir"] / "closure.yml", f"""
closure:
  labels: {{threshold: 15000}}
  test: {{file: tests.root, delays: [10, 20.5, 33.3]}}
  evaluators:
    - {{method: Mean, template: {{file: {files['template']}}}}}
    - {{method: LinearInterpolation, name: li, template: {{file: templates.root}}}}
""")
    assert runcalibration.main([yml, "-o", "study"]) == 0
    out = timerc / "calibration" / "study"
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 6 and set(table["method"]) == {"Mean", "LinearInterpolation"}
    assert np.allclose(table["true_delay"], np.tile([10, 20.5, 33.3], 2))
    assert (np.abs(table["delay"] - table["true_delay"]) < 1.5).all()
    assert (table["lower"] <= table["delay"]).all() and (table["delay"] <= table["upper"]).all()
    assert (table["label_threshold"] == "15000").all()
    curves = pd.read_parquet(out / "curves.parquet")
    assert set(curves["pass"]) == {"coarse", "fine"}
    assert len(curves[(curves["pass"] == "coarse")]) == 6 * 50
    index = (out / "index.html").read_text()
    images = re.findall(r"src='([^']+\.png)'", index)
    assert len(images) == 2 * 6
    for image in images:
        assert (out / image).is_file() and (out / image).with_suffix(".pdf").is_file()
    # Evaluators are cached under [paths] calibration/evaluators/<method>/<name>/.
    assert (timerc / "calibration/evaluators/LinearInterpolation/li/evaluator.pkl").is_file()
    assert (timerc / "calibration/evaluators/Mean/templates_Sampled/evaluator.pkl").is_file()
    printed = capsys.readouterr().out
    assert "bias" in printed and "coverage" in printed


def test_emulate_histogram_gives_one_delay_line(files, timerc, capsys):
    code = runcalibration.main(["--test", str(files["emulate"]), "--template", str(files["template"]),
                                "--method", "LinearInterpolation", "--no-plots"])
    assert code == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("delay =")]
    assert len(lines) == 1
    delay, plus, minus = map(float, LINE.match(lines[0]).groups())
    assert delay - 3 * minus <= 23.45 <= delay + 3 * plus


def test_production_task_as_input(files, timerc, capsys):
    result = timerc / "production/scan/results/threshold_15000__0123456789"
    result.mkdir(parents=True)
    (result / "templates.root").write_bytes(files["template"].read_bytes())
    (result / "params.json").write_text(json.dumps(
        {"task_id": "0123456789", "params": {"threshold": 15000}, "output": "templates.root"}))
    yml = _yaml(timerc / "task.yml", f"""
from_task:
  test: {{file: {files['emulate']}}}
  evaluators:
    - method: LinearInterpolation
      template: {{production: scan, params: {{threshold: 15000}}}}
    - method: Mean
      template: {{production: scan, task: 0123456789}}
""")
    assert runcalibration.main([yml, "--no-plots"]) == 0
    assert len([l for l in capsys.readouterr().out.splitlines() if LINE.match(l)]) == 2
    table = pd.read_parquet(timerc / "calibration/task/results.parquet")
    assert set(table["template_file"]) == {str(result / "templates.root")}


def test_delay_window_selects_the_histograms_in_range(files, timerc):
    yml = _yaml(files["dir"] / "window.yml", """
w:
  test: {file: tests.root, delays: {min: 20, max: 21}}
  evaluators: [{method: Mean, template: {file: templates.root, delays: {min: 10, max: 30}}}]
""")
    assert runcalibration.main([yml, "--no-plots"]) == 0
    table = pd.read_parquet(timerc / "calibration/window/results.parquet")
    assert np.allclose(table["true_delay"], np.arange(200, 211) / 10)
    (result,) = runcalibration.run_scenarios(
        runcalibration.parse_scenarios(runcalibration.load_yaml(yml), files["dir"] / "window.yml", lambda: None),
        timerc / "calibration", get_registry(), log=lambda s: None)
    delays = result.evaluations[0].evaluator.templates.delays
    assert delays.min() >= 10 - 1e-9 and delays.max() <= 30 + 1e-9 and len(delays) == 201


def test_evaluator_cache_is_reused_and_rebuilt_when_the_template_changes(tmp_path):
    template = write_file(tmp_path / "t.root", *make_hits(20_000, 5), scan_delays())
    method = builtin_methods()[1]
    first, cached = build_evaluator(method, "x", template, "Sampled", tmp_path)
    assert not cached
    again, cached = build_evaluator(method, "x", template, "Sampled", tmp_path)
    assert cached and np.array_equal(again.templates.counts, first.templates.counts)
    write_file(template, *make_hits(20_000, 6), scan_delays())  # new content, same path
    rebuilt, cached = build_evaluator(method, "x", template, "Sampled", tmp_path)
    assert not cached
    assert not np.array_equal(rebuilt.templates.counts, first.templates.counts)


class _NearestTemplate:
    """A third-party evaluator: squared distance of normalised shapes to the nearest template."""

    def __init__(self, templates: HistogramStack):
        self.templates = templates

    def score(self, tests, delays):
        grid = np.broadcast_to(np.atleast_2d(delays), (len(tests), np.shape(delays)[-1]))
        nearest = np.abs(self.templates.delays[None, None, :] - grid[..., None]).argmin(-1)
        shape = self.templates.counts / self.templates.counts.sum(1, keepdims=True)
        test = tests.counts / tests.counts.sum(1, keepdims=True)
        return 1e4 * ((shape[nearest] - test[:, None, :]) ** 2).sum(-1)


class _Plugin:
    @hookimpl
    def timecal_evaluators(self):
        yield EvaluatorMethod("Nearest", _NearestTemplate, "test plugin")


def test_evaluator_registered_by_a_plugin_is_used(files, timerc):
    pm = make_plugin_manager()
    pm.register(_Plugin(), name="nearest")
    registry = build_registry(pm, {"nearest": ("timecal-nearest", "1.0")})
    assert "Nearest" in registry.evaluators
    builtin = get_registry().evaluators
    assert builtin["Mean"].distribution == "timecal-analysis"
    yml = files["dir"] / "plugin.yml"
    yml.write_text("p:\n  test: {file: tests.root, delays: [20.5]}\n"
                   "  evaluators: [{method: Nearest, template: {file: templates.root}}]\n")
    scenarios = runcalibration.parse_scenarios(runcalibration.load_yaml(yml), yml, lambda: None)
    (result,) = runcalibration.run_scenarios(scenarios, timerc / "calibration", registry, log=lambda s: None)
    assert abs(result.evaluations[0].scan.estimate[0] - 20.5) < 1.5


@pytest.mark.parametrize("body, message", [
    ("x:\n  test: {file: tests.root, delays: [51.3]}\n  evaluators: [{method: Mean, template: {file: templates.root}}]",
     "scenario 'x': test: tests.root has no Sampled histogram at delay 51.3 ns"),
    ("x:\n  test: {file: tests.root}\n  evaluators: [{method: Median, template: {file: templates.root}}]",
     "scenario 'x': evaluators[0]: unknown method 'Median'; installed: Binomial, LinearInterpolation, Mean"),
    ("x:\n  evaluators: [{method: Mean, template: {file: templates.root}}]",
     "scenario 'x': missing key 'test'"),
    ("x:\n  test: {file: tests.root}\n  evaluators: [{method: Mean}]",
     "scenario 'x': evaluators[0]: missing key 'template'"),
    ("x:\n  test: {file: tests.root}\n  evaluators: [{method: Mean, template: {file: nope.root}}]",
     "evaluators[0]: template: file"),
    ("x:\n  test: {file: tests.root, mode: Both}\n  evaluators: [{method: Mean, template: {file: templates.root}}]",
     "mode 'Both' is not one of Sampled, Latched"),
])
def test_bad_scenario_files_give_one_line_errors(files, timerc, capsys, body, message):
    yml = _yaml(files["dir"] / "bad.yml", body)
    assert runcalibration.main([yml]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("runCalibration: error: bad.yml: ")
    assert message in err
    assert not (timerc / "calibration" / "bad").exists()


def test_missing_object_names_the_object_and_verbose_shows_the_traceback(files, timerc, capsys, tmp_path):
    import uproot

    with uproot.recreate(tmp_path / "empty.root") as f:
        f["something"] = "else"
    yml = _yaml(tmp_path / "obj.yml", f"x:\n  test: {{file: {tmp_path / 'empty.root'}}}\n"
                f"  evaluators: [{{method: Mean, template: {{file: {files['template']}}}}}]\n")
    assert runcalibration.main([yml]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no object 'DQMData/Run 1/Ph2TkBXHist/Run summary/Hist2D/OffsetScan" in err
    assert runcalibration.main([yml, "-v"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_measured_histogram_with_unknown_delay_through_the_console_script(files, timerc):
    """The installed ``runCalibration`` entry point, as users run it."""
    yml = _yaml(timerc / "measured.yml", f"""
measured:
  test: {{file: {files['emulate']}, true_delays: unknown}}
  evaluators: [{{method: LinearInterpolation, template: {{file: {files['template']}}}}}]
""")
    exe = Path(sys.executable).with_name("runCalibration")
    done = subprocess.run([str(exe), yml, "--no-plots"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (line,) = [l for l in done.stdout.splitlines() if l.startswith("delay =")]
    assert "true" not in line and LINE.match(line)
    table = pd.read_parquet(timerc / "calibration/measured/results.parquet")
    assert table["true_delay"].isna().all() and table["abs_residual"].isna().all()
    bad = subprocess.run([str(exe), yml.replace("measured.yml", "nope.yml")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("runCalibration: error: ") and "nope.yml" in bad.stderr


# --------------------------------------------------------------------------- many tests per scenario
@pytest.fixture(scope="module")
def emulate_production(tmp_path_factory):
    """Five emulate-mode tasks of one production (threshold 15000, delays drawn per task) and
    one of another threshold, as BXRun leaves them."""
    root = tmp_path_factory.mktemp("prod")
    delays = [8.25, 14.5, 21.75, 30.0, 38.5]
    for i, delay in enumerate(delays + [12.0]):
        threshold = 15000 if i < len(delays) else 9000
        task = root / "emu" / "results" / f"delay_{delay}__{i:010x}"
        task.mkdir(parents=True)
        name = f"BXHistEmulateDelay_{delay:.2f}".replace(".", "p") + "_harvested.root"
        write_file(task / name, *make_hits(5_000, 40 + i), [delay])
        (task / "params.json").write_text(json.dumps(
            {"task_id": f"{i:010x}", "params": {"threshold": threshold, "delay": delay}, "output": name}))
    return root, delays


def test_every_task_matching_params_is_a_test_of_the_scenario(files, timerc, emulate_production, capsys):
    root, delays = emulate_production
    yml = _yaml(timerc / "many.yml", f"""
emulated:
  test: {{production: {root / 'emu'}, params: {{threshold: 15000}}}}
  evaluators:
    - {{method: Binomial, name: b, template: {{file: {files['template']}}}}}
    - {{method: Mean, name: m, template: {{file: {files['template']}}}}}
""")
    assert runcalibration.main([yml, "--no-plots"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [l for l in out if LINE.match(l)]
    assert len(lines) == 2 * len(delays)
    for delay in delays:  # each line names scenario, test (the task directory) and method
        tagged = [l for l in lines if f"test delay_{delay}__" in l]
        assert len(tagged) == 2 and all("scenario emulated" in l for l in tagged)
        assert {("Binomial" in l) for l in tagged} == {True, False}
    summary = [l for l in out if l.startswith("emulated / Binomial")]
    assert len(summary) == 1 and re.search(r"5 test\(s\): bias [+-]\d\.\d{3} ± \d\.\d{3} ns, "
                                            r"resolution \d\.\d{3} ± \d\.\d{3} ns, ±1σ coverage \d+ ± \d+%",
                                            summary[0]), summary
    table = pd.read_parquet(timerc / "calibration/many/results.parquet")
    assert len(table) == 2 * len(delays)
    assert sorted(table[table["method"] == "Binomial"]["true_delay"]) == delays
    assert table["test"].str.startswith("delay_").all() and table["test_file"].nunique() == len(delays)
    summ = pd.read_parquet(timerc / "calibration/many/summary.parquet")
    assert list(summ["tests"]) == [5, 5] and (summ["reason"] == "").all()
    assert (summ["coverage_error"] > 0).all() and (summ["resolution"] > 0).all()


def test_glob_of_files_makes_one_test_per_file(files, timerc, emulate_production, capsys):
    root, delays = emulate_production
    yml = _yaml(timerc / "two.yml", f"""
pair:
  test: {{file: "{root}/emu/results/delay_[12]*/*_harvested.root"}}
  evaluators: [{{method: LinearInterpolation, template: {{file: {files['template']}}}}}]
""")
    assert runcalibration.main([yml]) == 0
    out = capsys.readouterr().out
    assert len([l for l in out.splitlines() if LINE.match(l)]) == 3  # 14.5, 21.75 and 12.0
    assert re.search(r"^pair / LinearInterpolation.*: 3 test\(s\): bias .* ± ", out, re.M)
    index = (timerc / "calibration/two/index.html").read_text()
    assert "every test" in index


def test_two_tests_give_n_a_and_a_template_must_still_be_one_task(files, timerc, emulate_production, capsys):
    root, _ = emulate_production
    yml = _yaml(timerc / "pair.yml", f"""
pair:
  test: {{file: "{root}/emu/results/delay_3*/*.root"}}
  evaluators: [{{method: Mean, template: {{file: {files['template']}}}}}]
""")
    assert runcalibration.main([yml, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "2 test(s): bias, resolution, coverage n/a: 2 test(s) with a known delay, 3 needed" in out
    bad = _yaml(timerc / "badtpl.yml", f"""
x:
  test: {{file: {files['emulate']}}}
  evaluators: [{{method: Mean, template: {{production: {root / 'emu'}, params: {{threshold: 15000}}}}}}]
""")
    assert runcalibration.main([bad]) == 2
    err = capsys.readouterr().err
    assert "5 finished tasks" in err and "a template must be one task" in err and err.count("\n") == 1


def test_quick_use_output_directory_has_a_short_name(files, timerc, capsys):
    assert runcalibration.main(["--test", str(files["emulate"]), "--template", str(files["template"]),
                                "--method", "Binomial", "--no-plots"]) == 0
    assert (timerc / "calibration" / "emulate_23p45" / "results.parquet").is_file()
    (line,) = [l for l in capsys.readouterr().out.splitlines() if LINE.match(l)]
    assert "scenario emulate_23p45, test BXHistEmulateDelay_23p45_subdet_ALL_harvested, Binomial" in line


def test_the_interval_is_calibrated_by_default_and_named_in_every_output(files, timerc, capsys):
    """Default: Feldman-Cousins levels (computed on first use, cached beside the evaluator,
    read back the next time); --sigma rise-of-one gives physics.md §8's rise of 1 and says
    that it is not a calibrated 68.3 % interval, per line and in results.parquet."""
    args = ["--test", str(files["emulate"]), "--template", str(files["template"]), "--method", "Binomial",
            "--no-plots"]
    assert runcalibration.main([*args, "-o", "fc"]) == 0
    first = capsys.readouterr().out
    levels = list((timerc / "calibration/evaluators/Binomial/templates_Sampled/levels").glob("*/levels_*.json"))
    assert len(levels) == 1 and json.loads(levels[0].read_text())  # the nodes computed, kept
    table = pd.read_parquet(timerc / "calibration/fc/results.parquet")
    assert table["interval"].str.startswith("Feldman-Cousins 68.3%").all()
    assert "±1σ:" not in [l for l in first.splitlines() if l.startswith("delay =")][0]  # the default, unsaid
    assert runcalibration.main([*args, "-o", "fc_again"]) == 0
    again = pd.read_parquet(timerc / "calibration/fc_again/results.parquet")
    assert np.array_equal(again[["delay", "lower", "upper"]].to_numpy(), table[["delay", "lower", "upper"]].to_numpy())
    capsys.readouterr()
    assert runcalibration.main([*args, "-o", "plain", "--sigma", "rise-of-one"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("delay =")][0]
    assert "±1σ: rise of 1 (--sigma rise-of-one, physics.md §8: not a calibrated 68.3% interval)" in line
    plain = pd.read_parquet(timerc / "calibration/plain/results.parquet")
    assert plain["interval"].str.startswith("rise of 1").all()
    assert plain["delay"].iloc[0] == table["delay"].iloc[0]  # the estimate does not depend on it
