"""Before launching: ``BXRun --script NAME --help`` (and the home shell's ``params``) shows a
script's parameters, and ``BXRun --pilot N`` runs N tasks spanning the grid's work axes on
the local backend, reports what they took, extrapolates, and launches the rest only when
asked. Real BXRun processes, real Dask workers, the cbcsim emulator with tiny event counts
(and the test plugin's ``sleeper`` for failures), real pseudo-terminals."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from conftest import ledger_states as ledger_rows
from timecal_core.plan.grid import plan_grid
from timecal_core.contract.hookspecs import Parameter
from timecal_core.config.parameter_table import parameter_table
from timecal_core.plan.pilot import (BackendSize, LARGEST, backend_size, choose_pilot, measure,
                                     memory_request, render_report, walltime_request)
from timecal_core.contract.plugins import get_registry

BIN = Path(sys.executable).parent
GRID = "N: [1, 2, 3]\nnhits: [100, 300, 600]\nthreshold: [5000, 6000]\noffset_step: 2.0\n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def bxrun(env, *args, cwd=None, timeout=180):
    return subprocess.run([str(BIN / "BXRun"), *map(str, args)], env=env, cwd=cwd, timeout=timeout,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def result_dirs(prod):
    return sorted(p.name for p in (prod / "results").iterdir()
                  if p.is_dir() and (p / "params.json").is_file())


# --------------------------------------------------------------------------- --help, params
def test_script_help_lists_its_parameters(env):
    wide = {**env, "COLUMNS": "220"}
    out = bxrun(wide, "--script", "cbcsim", "--help")
    assert out.returncode == 0, out.stderr
    assert "--pilot [N]" in out.stdout  # the usual help first
    table = out.stdout.split("Parameters of script 'cbcsim'", 1)[1]
    assert re.search(r"\nparameter\s+type\s+default\s+unit\s+allowed\s+help\n", table)
    assert re.search(r"\nthreshold\s+float\s+5800\.0\s+electrons\s+>= 0\s+CBC threshold", table)
    assert re.search(r"\nsubdet\s+str\s+ALL\s+ALL \| BLL \| BLH \| BHL \| BHH \| ELL \| ELH \| EHL \| EHH\s+"
                     r"Region of the Outer Tracker", table)
    assert re.search(r"\nnhits \*\s+int\s+20000\s+>= 0\s+synthetic hits", table)
    assert re.search(r"\nN \*\s+int\s+1\s+number of events", table)
    assert re.search(r"\noffset_step\s+float\s+0\.1\s+ns\s+delay step", table)
    assert "* changes the work of a task" in table
    # without --script: the usual help only; the script's name may come after --help too
    plain = bxrun(wide, "--help")
    assert plain.returncode == 0 and "Parameters of script" not in plain.stdout
    after = bxrun(wide, "-h", "--script=sleeper")
    assert after.returncode == 0 and re.search(r"\nseconds\s+float\s+0\.0\s+how long", after.stdout)
    # 80 columns: the help goes under each row, nothing wider than the terminal
    narrow = bxrun({**env, "COLUMNS": "80"}, "--script", "cbcsim", "--help")
    lines = narrow.stdout.split("Parameters of script", 1)[1].splitlines()[1:-2]
    assert max(len(line) for line in lines) <= 80
    assert any(re.match(r"\s+synthetic hits generated", line) for line in lines)


def test_unknown_script_help_is_one_line_naming_the_installed_ones(env):
    out = bxrun(env, "--script", "nope", "--help")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("BXRun: error:")
    assert "'nope'" in lines[0] and "cbcsim" in lines[0] and "sleeper" in lines[0]


def test_home_shell_params_shows_the_same_table(env):
    expected = parameter_table(get_registry().script("cbcsim").item, width=200)
    shell = pexpect.spawn(str(BIN / "timecal"), env={**env, "COLUMNS": "200"}, encoding="utf-8",
                          dimensions=(60, 200), timeout=60)
    try:
        shell.expect("timecal>")
        shell.sendline("params cbcsim")
        shell.expect(r"--yaml grid\.")
        shown = ANSI.sub("", shell.before).replace("\r", "")
        for line in expected.splitlines()[1:-1]:
            assert line.rstrip() in shown
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)


# --------------------------------------------------------------------------- choosing the tasks
def _plan(tmp_path, script, grid):
    return plan_grid(get_registry().script(script).item, grid, tmp_path / "out")


def _key(task, *names):
    return tuple(task.params[n] for n in names)


def test_pilot_spans_the_corners_and_centre_of_the_work_axes(tmp_path):
    plan = _plan(tmp_path, "cbcsim", {"N": [1, 2, 3], "nhits": [600, 100, 300],
                                      "threshold": [5000.0, 6000.0]})
    choice = choose_pilot(plan.tasks, plan.script.parameters, 5)
    assert choice.work_axes == ["N", "nhits"] and choice.declared
    keys = [_key(t, "N", "nhits") for t in choice.tasks]
    assert keys == [(3, 600), (1, 100), (2, 300), (3, 100), (1, 600)]  # largest, smallest, centre, corners
    assert [choice.roles[t.task_id] for t in choice.tasks][:3] == [LARGEST, "smallest work", "centre"]
    assert _key(next(t for t in plan.tasks if t.task_id == choice.largest), "N", "nhits") == (3, 600)
    # the axis that does not change the work is tried too, not left at one value
    assert {t.params["threshold"] for t in choice.tasks} == {5000.0, 6000.0}
    # one task: the largest; more than the grid: all of it, once each
    assert [_key(t, "N", "nhits") for t in choose_pilot(plan.tasks, plan.script.parameters, 1).tasks] \
        == [(3, 600)]
    everything = choose_pilot(plan.tasks, plan.script.parameters, 100).tasks
    assert sorted(t.task_id for t in everything) == sorted(t.task_id for t in plan.tasks)
    # beyond corners and centre: spread over the rest, no repeats
    seven = choose_pilot(plan.tasks, plan.script.parameters, 7).tasks
    assert len({t.task_id for t in seven}) == 7 and keys == [_key(t, "N", "nhits") for t in seven[:5]]


def test_without_declared_work_axes_every_varying_axis_is_spanned(tmp_path):
    plan = _plan(tmp_path, "sleeper", {"index": [1, 2, 3, 4], "seconds": [0.5, 0.1],
                                       "mode": ["sleep", "spin"]})
    choice = choose_pilot(plan.tasks, plan.script.parameters, 3)
    assert not choice.declared and choice.work_axes == ["index", "seconds", "mode"]
    assert [_key(t, "index", "seconds", "mode") for t in choice.tasks] == \
        [(4, 0.5, "spin"), (1, 0.1, "sleep"), (2, 0.1, "sleep")]
    assert choice.roles[choice.largest] == "largest values"  # no work axis: not called work (issue 22)


def test_a_declared_work_axis_that_does_not_vary_falls_back_to_the_varying_ones():
    class T:
        def __init__(self, i, a, b):
            self.task_id, self.dirname, self.params = f"t{i}", f"d{i}", {"a": a, "b": b}

    params = (Parameter("a", "int", work=True), Parameter("b", "float"))
    tasks = [T(i, 7, b) for i, b in enumerate([3.0, 1.0, 2.0])]
    choice = choose_pilot(tasks, params, 2)
    assert choice.work_axes == ["b"] and [t.params["b"] for t in choice.tasks] == [3.0, 1.0]


# --------------------------------------------------------------------------- figures
def test_requests_are_rounded_up_with_their_margin():
    mib = 1024 * 1024
    assert memory_request(60 * mib) == 256 * mib
    assert memory_request(300 * mib) == 512 * mib  # 450 MiB -> next 256 MiB step
    assert memory_request(3 * 1024 * mib) == 5 * 1024 * mib  # 4.5 GiB -> whole GiB
    assert walltime_request(2.0) == "00:01:00"
    assert walltime_request(45 * 60) == "01:30:00"
    assert walltime_request(61 * 60) == "02:02:00"


def test_backend_size_from_the_timerc_section():
    assert backend_size("local", {"workers": "3"}).slots == 3
    assert backend_size("local", {}).slots == (os.cpu_count() or 1)
    slurm = backend_size("slurm", {"jobs": "4", "cores": "8", "processes": "2"})
    assert slurm.slots == 32 and "4 jobs x 2 workers x 4 threads" in slurm.text
    assert backend_size("htcondor", {"adapt_min": "1", "adapt_max": "10", "cores": "1"}).slots == 10
    assert backend_size("mystery", {"nodes": "9"}).slots == 1
    gateway = backend_size("gateway", {"workers": "10", "cores": "4"})  # worker_cores tasks per worker
    assert gateway.slots == 40 and gateway.text == "10 workers x 4 threads (timerc [gateway] workers, cores)"


def test_measure_reads_what_params_json_has_and_survives_what_it_lacks(tmp_path):
    d = tmp_path / "results" / "t__1"
    d.mkdir(parents=True)
    (d / "out.root").write_bytes(b"x" * 3000)
    (d / "params.json").write_text(json.dumps({
        "start": 100.0, "end": 112.5, "output": "out.root", "new_field": {"from": "the lead"},
        "steps": [{"wall": 5, "user": 4.0, "sys": 0.5, "maxrss_kib": 2048},
                  {"wall": 7, "user": 6.0, "sys": 1.0, "maxrss_kib": 4096, "cpu_extra": 1}]}))
    m = measure(tmp_path, "1", "t__1")
    assert (m.runtime, m.cpu, m.peak_rss, m.output) == (12.5, 11.5, 4096 * 1024, 3000)
    assert m.steps_wall == 12.0  # the wall time the production's estimate uses
    assert m.disk >= 3000 + (d / "params.json").stat().st_size
    (d / "params.json").write_text(json.dumps({"steps": [{"wall": 2.0}, "junk"], "output": 7}))
    m = measure(tmp_path, "1", "t__1")
    assert (m.runtime, m.cpu, m.peak_rss, m.output) == (2.0, None, None, None)
    assert measure(tmp_path, "2", "absent").runtime is None
    # the attempt's totals at the top level (provenance) when the steps do not say
    (d / "params.json").write_text(json.dumps({"steps": [], "cpu": 3.5, "maxrss_kib": 1024,
                                               "output_bytes": 99}))
    m = measure(tmp_path, "1", "t__1")
    assert (m.cpu, m.peak_rss, m.output) == (3.5, 1024 * 1024, 99)


def test_report_extrapolates_from_the_pilot(tmp_path):
    plan = _plan(tmp_path, "cbcsim", {"N": [1, 2], "nhits": [100, 200]})
    choice = choose_pilot(plan.tasks, plan.script.parameters, 2)
    from timecal_core.plan.pilot import Measured

    m = [Measured(choice.tasks[0].task_id, "", runtime=100.0, cpu=90.0, peak_rss=300 << 20,
                  output=10 << 20, disk=11 << 20),
         Measured(choice.tasks[1].task_id, "", runtime=20.0, cpu=18.0, peak_rss=100 << 20,
                  output=2 << 20, disk=3 << 20)]
    text = render_report(choice, m, 4000, 3998, BackendSize(10, "10 workers x 1 thread"))
    assert "CPU time     60.0 CPU-hours (at most 100 CPU-hours)" in text  # 54 s x 4000, 90 s x 4000
    assert "wall time    6:39:48 for the 3998 remaining tasks on 10 slots" in text  # 60 s x 3998 / 10
    assert "disk         27.3 GiB for all outputs (at most 43.0 GiB)" in text
    assert "request 512 MiB per task (peak RSS 300 MiB x 1.5" in text
    assert "request 00:04:00 per task (longest 0:01:40 x 2" in text
    assert f"the largest work: {choice.largest} (N=2 nhits=200)" in text


# --------------------------------------------------------------------------- real pilots
def spawn_pilot(tmp_path, env, name, *extra):
    (tmp_path / "grid.yml").write_text(GRID)
    return pexpect.spawn(str(BIN / "BXRun"), ["--script", "cbcsim", "--yaml", "grid.yml", "-o", name,
                                              "--interval", "1", "--pilot", "3", *extra],
                         env=env, encoding="utf-8", dimensions=(50, 220), timeout=150, cwd=str(tmp_path))


def test_pilot_in_a_terminal_answered_no_launches_nothing(tmp_path, env):
    term = spawn_pilot(tmp_path, env, "pil")
    try:
        term.expect(r"launch the remaining 15 tasks\? \[y/N\] ")
        report = ANSI.sub("", term.before).replace("\r", "")
        term.sendline("n")
        term.expect(r"Launch the rest with: (BXRun [^\n]*)\n")
        command = term.match.group(1).strip()
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0
    prod = tmp_path / "prod" / "pil"
    rows = ledger_rows(prod)  # the whole grid: the pilot's 3 done, the rest planned (issue 22)
    assert sorted(s for _, s, _ in rows.values()) == ["done"] * 3 + ["planned"] * 15
    assert len(result_dirs(prod)) == 3
    assert not (prod / ".control" / "driver.json").exists() or \
        json.loads((prod / ".control" / "driver.json").read_text())["stopped"]
    assert {(p["N"], p["nhits"]) for p, s, _ in rows.values() if s == "done"} == \
        {(3, 600), (1, 100), (2, 300)}
    assert re.search(r"(\w{10})\s+largest work\s+N=3 threshold=\S+ nhits=600\s", report)
    # every figure is there and plausible for tasks of a fraction of a second on 2 workers
    peaks = [float(x) for x in re.findall(r"\s(\d+\.?\d*) MiB\s+\d", report)]
    assert len(peaks) == 3 and all(10 < p < 2000 for p in peaks)
    assert re.search(r"CPU time\s+\S+ CPU-hours", report)
    wall = re.search(r"wall time\s+(\d+):(\d\d):(\d\d) for the 15 remaining tasks on 2 slots: "
                     r"2 workers x 1 thread", report)
    assert wall and int(wall.group(1)) * 3600 + int(wall.group(2)) * 60 + int(wall.group(3)) < 120
    disk = re.search(r"disk\s+(\d+\.?\d*) (KiB|MiB) for all outputs", report)
    per_task = sum(f.stat().st_size for d in result_dirs(prod) for f in (prod / "results" / d).iterdir()) / 3
    estimate = float(disk.group(1)) * (1024 if disk.group(2) == "KiB" else 1024 * 1024)
    assert 0.5 * 18 * per_task < estimate < 2 * 18 * per_task
    assert re.search(r"memory\s+request 256 MiB per task", report)
    assert re.search(r"walltime\s+request 00:01:00 per task", report)
    assert "--pilot" not in command and "-o pil" in command
    assert "--yaml" not in command  # the production holds its grid since the pilot


def test_pilot_in_a_terminal_answered_yes_completes_the_grid_without_rerunning_it(tmp_path, env):
    term = spawn_pilot(tmp_path, env, "yes")
    prod = tmp_path / "prod" / "yes"
    try:
        term.expect(r"\[y/N\] ")
        before = {d: (prod / "results" / d / "params.json").read_text() for d in result_dirs(prod)}
        term.sendline("y")
        term.expect("the driver runs on its own")
        term.expect(r"production complete: 18 tasks done \(15 this run")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0
    rows = ledger_rows(prod)
    assert len(rows) == 18 and {s for _, s, _ in rows.values()} == {"done"}
    assert len(result_dirs(prod)) == 18
    assert {a for _, _, a in rows.values()} == {1}
    for d, text in before.items():  # the pilot's results are the ones the production kept
        assert (prod / "results" / d / "params.json").read_text() == text


def test_pilot_without_a_terminal_reports_then_yes_runs_the_rest(tmp_path, env):
    (tmp_path / "grid.yml").write_text(GRID)
    out = bxrun(env, "--script", "cbcsim", "--yaml", "grid.yml", "-o", "batch", "--interval", "1",
                "--pilot", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "extrapolated to the whole grid (18 tasks, 16 still to run" in out.stdout
    assert "Launch the rest with: BXRun --script cbcsim -o batch --interval 1" in out.stdout
    assert "production complete" not in out.stdout and not (tmp_path / "prod" / "batch" / "results" /
                                                              "summary.parquet").exists()
    rows = ledger_rows(tmp_path / "prod" / "batch")  # the whole grid, the rest planned (issue 22)
    assert sorted(s for _, s, _ in rows.values()) == ["done"] * 2 + ["planned"] * 16
    again = bxrun(env, "--script", "cbcsim", "--yaml", "grid.yml", "-o", "batch", "--interval", "1",
                  "--pilot", "2", "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 already done" in again.stdout  # the rerun pilot reuses its results
    assert "production complete: 18 tasks done (16 this run" in again.stdout
    assert {a for _, _, a in ledger_rows(tmp_path / "prod" / "batch").values()} == {1}


def test_a_failed_pilot_says_why_and_does_not_offer_to_launch(tmp_path, env):
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3]\nexit_code: [0, 3]\nmessage: bad cfg\n")
    out = bxrun(env, "--script", "sleeper", "--yaml", "grid.yml", "-o", "bad", "--interval", "1",
                "--pilot", "3", "--max-retries", "1", "--yes", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "launch the remaining" not in out.stdout and "extrapolated" not in out.stdout
    assert "the pilot failed" in out.stderr and "the rest is not launched" in out.stderr
    logs = re.findall(r"log: (\S+)", out.stderr)
    assert logs and all(Path(p).is_file() and "bad cfg" in Path(p).read_text() for p in logs)
    assert "BXRun --status -o" in out.stderr
    rows = ledger_rows(tmp_path / "prod" / "bad")
    assert sorted(s for _, s, _ in rows.values()).count("planned") == 3  # the rest was not launched


@pytest.mark.parametrize("argv", [["--pilot", "0"], ["--run", "index=1", "--pilot"]])
def test_pilot_misuse_is_a_one_line_error(env, argv):
    out = bxrun(env, "--script", "sleeper", *argv, "-o", "x")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "--pilot" in out.stderr


def test_a_pilot_as_large_as_the_grid_is_the_production(tmp_path, env):
    (tmp_path / "grid.yml").write_text("N: [1, 2]\nnhits: 100\noffset_step: 2.0\n")
    out = bxrun(env, "--script", "cbcsim", "--yaml", "grid.yml", "-o", "all", "--interval", "1",
                "--pilot", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pilot: 2 of 2 tasks" in out.stdout
    assert "production complete: 2 tasks done" in out.stdout  # aggregated like any production
    assert (tmp_path / "prod" / "all" / "results" / "summary.parquet").is_file()
    assert "the pilot covered the whole grid: nothing left to launch" in out.stdout


def test_the_grid_average_is_fitted_over_the_work_axes_not_the_pilots_mean(tmp_path):
    """A log-spaced event scan times pile-up: the pilot's corners over-represent the big
    tasks (its plain mean is 8028); a multilinear fit at the grid's mean gives the grid's
    true mean per task, 2777.5 x 2."""
    from timecal_core.plan.pilot import grid_average

    plan = _plan(tmp_path, "cbcsim", {"N": [10, 100, 1000, 10000], "pileup": [0, 200]})
    choice = choose_pilot(plan.tasks, plan.script.parameters, 5)
    cost = {t.task_id: t.params["N"] * (1 + t.params["pileup"] / 100) for t in choice.tasks}
    assert sum(cost.values()) / 5 == pytest.approx(8028)
    value, fitted = grid_average(choice, cost)
    truth = sum(t.params["N"] * (1 + t.params["pileup"] / 100) for t in plan.tasks) / len(plan.tasks)
    assert fitted and value == pytest.approx(truth) and truth == pytest.approx(5555)
    # a single pilot task: its value, nothing fitted
    one = choose_pilot(plan.tasks, plan.script.parameters, 1)
    assert grid_average(one, {one.largest: 7.0}) == (7.0, False)


def test_the_disk_warning_names_a_smaller_layout_only_when_there_is_one(tmp_path):
    """A grid whose outputs will not fit: a full-layout production is told about --layout
    compact; a compact one is not sent to the larger full layout, it is told to find space."""
    from timecal_core.plan.pilot import Extrapolation, disk_warnings

    ex = Extrapolation(total_tasks=100, remaining=90, cpu_mean=1, cpu_max=1, wall_mean=1, wall_max=1,
                       disk_mean=1e6, disk_max=1e6, peak=0, longest=1, size=None)
    (full,) = disk_warnings([], ex, "full", free=10**6, where=tmp_path, layouts=("full", "compact"))
    assert "90 remaining tasks" in full and "--layout compact keeps the 2D maps" in full
    (compact,) = disk_warnings([], ex, "compact", free=10**6, where=tmp_path, layouts=("full", "compact"))
    assert "--layout" not in compact and "free space there" in compact
    assert disk_warnings([], ex, "full", free=10**9, where=tmp_path, layouts=("full", "compact")) == []
