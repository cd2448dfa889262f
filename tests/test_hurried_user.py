"""Issue 22, errors a hurried user meets (defects 8-14), with real processes: the README's
own timerc, ``-o`` naming a file, a step whose error is 80,000 characters long, a
deterministic failure of many tasks, a full disk (a real 5 MB tmpfs, root only), Ctrl-C of
a foreground BXRun and the terminal of a monitor going away (real terminals in tmux), an
unquoted ``{placeholder}``, and the smaller items of defect 14 in a real monitor (pexpect).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from conftest import ledger_states, wait_for
from helpers.terminal import Tmux  # tests/ is on sys.path (rootdir, no __init__.py)

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
PROMPT = r"timecal \d+/\d+>"


def run(*argv, env, timeout=300, cwd=None):
    return subprocess.run([str(BIN / argv[0]), *map(str, argv[1:])], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)


def one_line(res, *fragments) -> str:
    """Exit 2 and one line on stderr (no traceback) holding every fragment."""
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if "warning:" not in ln]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def crashes(env) -> list[Path]:
    folder = Path(env["XDG_STATE_HOME"]) / "timecal" / "crashes"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------- 8. timerc
def readme_block(starting: str) -> str:
    """A block of the timerc reference (the README's until issue 30 moved it there)."""
    text = (REPO / "docs" / "reference" / "timerc.md").read_text()
    return next(b for b in re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M) if b.startswith(starting))


def test_the_readme_timerc_works_and_a_bad_setting_is_refused_before_anything_is_written(tmp_path, env):
    """Defect 8: the manual's ``[local]`` snippet (``workers = 4   # default: all cores``)
    parses; a wrong value there is one line before infiles/ or the ledger exist, so the
    corrected run takes the corrected --yaml."""
    block = readme_block("[paths]")
    local = block[block.index("[local]"):]
    assert "#" in local  # the snippet has its inline comment
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n\n{local}")
    env = {**env, "TIMECAL_CONFIG": str(timerc)}
    (tmp_path / "grid.yml").write_text("index: [1, 2]\n")
    ok = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "good",
             "--interval", "1", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "production complete: 2 tasks done" in ok.stdout

    timerc.write_text(timerc.read_text().replace("workers = 4", "workers = four"))
    (tmp_path / "wrong.yml").write_text("index: [1, 2]\n")
    bad = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "wrong.yml", "-o", "later",
              "--interval", "1", env=env)
    one_line(bad, "timerc [local] workers = 'four': expected a positive integer")
    assert not (tmp_path / "prod" / "later").exists()  # no infiles/, no ledger
    timerc.write_text(timerc.read_text().replace("workers = four", "workers = 2"))
    (tmp_path / "right.yml").write_text("index: [7, 8, 9]\n")
    fixed = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "right.yml", "-o", "later",
                "--interval", "1", env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "ignored" not in fixed.stderr
    assert sorted(p["index"] for p, _, _ in ledger_states(tmp_path / "prod" / "later").values()) == [7, 8, 9]


def test_init_writes_a_timerc_without_jargon_that_parses(tmp_path, env):
    env = {**env, "TIMECAL_CONFIG": str(tmp_path / "new" / "timerc")}
    res = run("BXRun", "--init", tmp_path / "data", env=env)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "new" / "timerc").read_text()
    assert "seed" not in text
    from timecal_core.config.timerc import load_timerc

    assert load_timerc(tmp_path / "new" / "timerc").section("local") == {}


# --------------------------------------------------------------------------- 9. -o a file
def test_output_naming_a_file_is_refused_before_any_work(tmp_path, env):
    """Defect 9: ``plotScan -o FILE`` and ``runCalibration ... -o FILE`` are one line, exit 2,
    no crash file, and runCalibration has computed nothing (no evaluator cached)."""
    from calibration_support import make_hits, write_file
    from scanprod import make_production

    from timecal_core.cms.harvested_layout import scan_delays

    make_production(tmp_path / "prod" / "scan", {"threshold": [5000, 6000]}, every=50)
    (tmp_path / "afile").write_text("mine\n")
    plot = run("plotScan", "-i", "scan", "-o", tmp_path / "afile", env=env)
    one_line(plot, f"-o {tmp_path / 'afile'}: is a file, not a directory")

    calibration = tmp_path / "calibration"
    timerc = Path(env["TIMECAL_CONFIG"])
    timerc.write_text(timerc.read_text().replace("[paths]\n", f"[paths]\ncalibration = {calibration}\n"))
    charge, toa = make_hits(2000, 1)
    write_file(tmp_path / "templates.root", charge, toa, scan_delays()[::10])
    write_file(tmp_path / "test.root", *make_hits(500, 2), [12.3])
    calib = run("runCalibration", "--test", tmp_path / "test.root", "--template", tmp_path / "templates.root",
                "-o", tmp_path / "afile", env=env)
    one_line(calib, f"-o {tmp_path / 'afile'}: is a file")
    assert not (calibration / "evaluators").exists()  # nothing computed
    assert (tmp_path / "afile").read_text() == "mine\n" and not crashes(env)


# --------------------------------------------------------------------------- 10. messages
def test_a_failure_message_is_the_steps_error_sentence_said_once(tmp_path, env):
    """Defect 10: a ROOT file without the ``simhits`` tree makes cbcsim's error list all its
    300 keys. The message kept and shown is its error sentence in at most 300 characters,
    the whole text is in the task's log, and it is printed once, for all tasks together."""
    import uproot

    bad = tmp_path / "bad_hits.root"
    with uproot.recreate(bad) as f:
        for i in range(300):
            f[f"key{i:03d}"] = "x"
    (tmp_path / "grid.yml").write_text(f"threshold: [4000, 5000, 6000]\nhits: {bad}\n")
    res = run("BXRun", "--script", "cbcsim", "--yaml", tmp_path / "grid.yml", "-o", "bad",
              "--interval", "1", "--max-retries", "2", env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    prod = tmp_path / "prod" / "bad"
    (reason,) = {row for row in _column(prod, "reason")}
    assert len(reason) <= 300, reason
    assert reason.startswith(f"step cbcsim exited with code 2: cbcsim: error: hits={bad}: no TTree 'simhits'")
    assert reason.endswith("[...: the task's log has it all]")
    assert res.stdout.count(reason) == 1  # once, in the end report
    live = [ln for ln in res.stdout.splitlines() if re.match(r"BXRun: (task \w+|\d+ more task\(s\)) failed", ln)]
    assert live[0].startswith("BXRun: task ") and len(live) <= 2, live  # the first, then a count
    assert all(len(ln) < 300 for ln in live)
    assert "3 x exit 2: " + reason in res.stdout
    logs = re.findall(r"log of \w+: (\S+)", res.stdout)
    assert logs and "key299" in Path(logs[0]).read_text()  # the rest is in the log


def _column(prod: Path, name: str) -> list:
    import sqlite3

    db = sqlite3.connect(f"file:{prod / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute(f"SELECT {name} FROM tasks")]
    finally:
        db.close()


def test_a_deterministic_failure_of_many_tasks_is_reported_once_with_a_count(tmp_path, env):
    (tmp_path / "grid.yml").write_text("index: " + str(list(range(40))) + "\nexit_code: 3\n"
                                       "message: the same every time\n")
    res = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "many",
              "--interval", "2", "--max-retries", "1", env=env, timeout=400)
    assert res.returncode == 1, res.stdout + res.stderr
    announced = [ln for ln in res.stdout.splitlines() if "failed for good" in ln]
    assert 1 <= len(announced) <= 5, announced  # the first, then counts per interval
    assert "40 x exit 3: step sleep exited with code 3: failing on purpose with exit code 3: " \
           "the same every time" in res.stdout
    assert "40 task(s) did not succeed" in res.stdout


def test_error_sentence_of_the_usual_logs():
    from timecal_core.ledger.failure_causes import error_sentence

    uproot_like = ("=== step cbcsim: x\ncbcsim: error: hits=/x.root: cannot be read as a ROOT file "
                   "(expected Chunk of length 403,\nreceived 100 bytes from MemmapSource\nfor file "
                   "path /x.root)\n")
    assert error_sentence(uproot_like) == (
        "cbcsim: error: hits=/x.root: cannot be read as a ROOT file (expected Chunk of length 403, "
        "received 100 bytes from MemmapSource for file path /x.root)")
    traceback_like = 'Traceback (most recent call last):\n  File "a.py", line 1\n    x\nValueError: bad\n'
    assert error_sentence(traceback_like) == "ValueError: bad"
    cmssw = ("----- Begin Fatal Exception 07-Dec-2026 ----\nAn exception of category 'FileOpenError' "
             "occurred while\n   [0] Constructing the EventProcessor\nException Message:\nFailed to "
             "open the file 'x.root'\n----- End Fatal Exception ------\n")
    assert error_sentence(cmssw) == "Exception Message: Failed to open the file 'x.root'"
    assert error_sentence("sleeper pid=3\nnothing went wrong, it says\n") == "nothing went wrong, it says"


# --------------------------------------------------------------------------- 11. full disk
@pytest.fixture
def tmpfs(tmpfs_mount):
    """A real 5 MB tmpfs (root only; elsewhere skipped with the reason)."""
    return tmpfs_mount("5m")


def test_a_full_disk_is_one_line_and_the_rerun_completes(tmp_path, env, tmpfs):
    """Defect 11: 12 emulator outputs of ~0.5 MB on a 5 MB disk. The driver stops in one
    line naming the disk (no traceback, no logging errors); with room made, the same
    command completes, every result once."""
    (tmp_path / "grid.yml").write_text("threshold: [3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500, "
                                       "7000, 7500, 8000, 8500]\nnhits: 200\n")
    prod = tmpfs / "prod"
    full = run("BXRun", "--script", "cbcsim", "--yaml", tmp_path / "grid.yml", "-o", prod,
               "--interval", "1", env=env, timeout=400)
    one_line(full, f"no space left on tmpfs ({tmpfs})", "free space and rerun: nothing done is lost")
    assert "Traceback" not in full.stdout and "Logging error" not in full.stdout
    assert len(full.stdout.splitlines()) < 15, full.stdout
    subprocess.run(["mount", "-o", "remount,size=40m", str(tmpfs)], check=True)
    again = run("BXRun", "--script", "cbcsim", "-o", prod, "--interval", "1", env=env, timeout=400)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "production complete: 12 tasks done" in again.stdout
    assert sorted(s for _, s, _ in ledger_states(prod).values()) == ["done"] * 12


# --------------------------------------------------------------------------- 12. terminals
def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_ctrl_c_of_a_foreground_bxrun_is_one_line(tmp_path, env):
    """Defect 12: Ctrl-C in the terminal of a BXRun in the foreground: one line (and how to
    resume), no Dask worker traceback, every worker process gone; the rerun resumes."""
    import psutil

    (tmp_path / "grid.yml").write_text("index: [1, 2, 3, 4, 5, 6]\nseconds: 20\n")
    term = Tmux(tmp_path, env, BIN)
    try:
        term.send("BXRun --script sleeper --yaml grid.yml -o fg --interval 2 < /dev/null")
        term.wait(r"running [12] ")
        (driver,) = [p.pid for p in psutil.process_iter(["cmdline"])
                     if p.info["cmdline"] and "fg" in p.info["cmdline"] and
                     any(a.endswith("BXRun") for a in p.info["cmdline"][:2])]
        family = _descendants(driver)
        assert family  # its local workers
        term.send("C-c", enter=False)
        screen = term.wait(r"interrupted.*\n\$")
        after = screen[screen.rindex("^C"):]
        assert [ln for ln in after.splitlines() if ln.strip() and ln.strip() != "$"] == \
            ["^CBXRun: interrupted; rerun the same command to resume (what finished is kept)"], after
        wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                 for p in family + [driver]), what="every worker to end")
    finally:
        term.kill()
    assert not crashes(env)
    states = {s for _, s, _ in ledger_states(tmp_path / "prod" / "fg").values()}
    assert states <= {"pending", "done"}


def test_closing_the_terminal_of_a_monitor_detaches_quietly(tmp_path, env):
    """Defect 12: the terminal of an attached monitor goes away (tmux kills it: the pty
    hangs up): the monitor detaches without a crash file, the driver goes on."""
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3, 4]\nseconds: 60\n")
    det = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "away",
              "--interval", "1", "--detach", env=env)
    assert det.returncode == 0, det.stdout + det.stderr
    record = json.loads((tmp_path / "prod" / "away" / ".control" / "driver.json").read_text())
    term = Tmux(tmp_path, env, BIN)
    try:
        term.send("timecal attach away")
        term.wait(PROMPT)
        term.send("stat", enter=False)  # half a command typed, as one leaves it
    finally:
        term.kill()
    time.sleep(3)
    assert not crashes(env), [p.read_text() for p in crashes(env)]
    import psutil

    assert psutil.pid_exists(record["pid"])
    stop = run("timecal", "stop", "away", env=env)
    assert stop.returncode == 0, stop.stdout + stop.stderr


# --------------------------------------------------------------------------- 13. placeholders
def test_an_unquoted_placeholder_named_by_custom_is_filled(tmp_path, env):
    """Defect 13: ``index: {i}`` with ``--custom i=3`` (the old scripts' habit) plans index 3;
    without the --custom it names the placeholder."""
    (tmp_path / "grid.yml").write_text("index: {i}\nseconds: [{s}, 0.1]\n")
    res = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "ph",
              "--custom", "i=3", "s=0", "--interval", "1", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted((p["index"], p["seconds"]) for p, _, _ in ledger_states(tmp_path / "prod" / "ph").values()) \
        == [(3, 0.0), (3, 0.1)]
    missing = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "ph2",
                  "--custom", "s=0", env=env)
    one_line(missing, "grid.yml:1: placeholder {i} has no value; pass --custom i=VALUE")


# --------------------------------------------------------------------------- 14. smaller items
def test_an_include_of_a_text_file_is_a_short_line(tmp_path, env):
    (tmp_path / "grid.yml").write_text("index: !include /etc/passwd\n")
    line = one_line(run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "inc",
                        env=env), "!include /etc/passwd: holds text, not YAML data")
    assert len(line) < 250 and "root:" not in line


def test_a_scripts_own_rule_names_the_file(tmp_path, env):
    (tmp_path / "grid.yml").write_text("offset_step: 0\n")
    one_line(run("BXRun", "--script", "cbcsim", "--yaml", tmp_path / "grid.yml", "-o", "os", env=env),
             f"{tmp_path / 'grid.yml'}: parameter 'offset_step' got 0")


def test_attach_where_there_is_no_production_says_how_to_start_one(tmp_path, env):
    (tmp_path / "prod" / "empty").mkdir(parents=True)
    line = one_line(run("timecal", "attach", "empty", env=env), "no production here")
    assert "BXRun --script SCRIPT --yaml GRID.yml -o" in line and "--detach" not in line


def test_a_pilot_without_work_parameters_does_not_call_its_task_largest_work(tmp_path, env):
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3, 4]\n")
    res = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "pil", "--pilot", "2",
              "--interval", "1", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "largest work" not in res.stdout and "largest values" in res.stdout


def test_the_status_page_map_follows_the_grids_order(tmp_path, env):
    """The map's axes are the first two varying parameters as the grid gives them (seconds,
    then level), not alphabetically (index, level)."""
    (tmp_path / "grid.yml").write_text("seconds: [0, 0.01]\nlevel: [1, 2, 3]\nindex: [1, 2]\n")
    res = run("BXRun", "--script", "sleeper", "--yaml", tmp_path / "grid.yml", "-o", "map",
              "--interval", "1", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    page = (tmp_path / "prod" / "map" / "status.html").read_text()
    gridmap = page[page.index("<pre id='gridmap'>"):]
    assert "seconds" in gridmap[:200] and "level" in gridmap[:400] and "index" not in gridmap[:200]


def test_the_monitor_answers_every_small_thing(tmp_path, env):
    """In a real monitor over a lingering production (some tasks failed for good):
    ``retry index>>5`` is refused as a filter (no file '5' written), ``retry`` of a done task
    says there is nothing to retry, ``clear`` clears, ``errors by`` shows an empty value as
    "" and ``tasks message=`` selects it."""
    (tmp_path / "grid.yml").write_text('index: [1, 2, 3, 4]\nmessage: ["", "boom"]\nfail_index_min: 3\n')
    term = pexpect.spawn(str(BIN / "BXRun"), ["--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"),
                                              "-o", "small", "--interval", "1", "--max-retries", "1"],
                         env=env, encoding="utf-8", dimensions=(50, 200), timeout=120, cwd=str(tmp_path))
    try:
        term.expect("nothing left to run: 4 failed for good")
        term.expect(PROMPT)
        term.sendline("retry index>>5")
        term.expect(r"'index>>5': index expects an integer, got '>5'")
        term.expect(PROMPT)
        assert not (tmp_path / "5").exists()
        done = next(t for t, (p, s, _) in ledger_states(tmp_path / "prod" / "small").items() if s == "done")
        term.sendline(f"retry {done}")
        term.expect(r"nothing to retry: the 1 task\(s\) selected are done, pending or running")
        term.expect(PROMPT)
        term.sendline("clear")
        term.expect_exact("\x1b[2J")
        term.expect(PROMPT)
        term.sendline("errors by")
        term.expect(r'message\s+[\d.]+\s+"": 2/4')
        term.expect(PROMPT)
        term.sendline("tasks message=")
        term.expect(r"4 task\(s\) match message=")
        term.expect(PROMPT)
        term.sendline("exit")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
