"""Issue 22, states that look finished (defects 5-7): every count and ETA is over the
planned grid. After a pilot of 2 of 6 tasks, ``--status``, the home shell, the status page
and plotScan all say 6 (2 done, 4 planned, the missing grid points named); a stopped
production shows no ETA; ``timecal stop`` counts the cancelled tasks still to run; a
``detach`` from a driver with nothing left says that it ends. Real BXRun processes, a real
home shell and monitor in pseudo-terminals (pexpect)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect

from conftest import ledger_states, wait_for

BIN = Path(sys.executable).parent
PROMPT = r"timecal \d+/\d+>"


def run(*argv, env, timeout=300, **kw):
    return subprocess.run([str(BIN / argv[0]), *map(str, argv[1:])], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def test_after_a_pilot_every_count_is_over_the_planned_grid(tmp_path, env):
    """Defect 5 (and plotScan's part of 6): ``--pilot 2`` of a 6-task grid. Everyone says 6
    tasks, 2 done, 4 planned; nothing says 100 %; plotScan names the 4 missing points and
    plots the 2 others with --allow-missing; launching the rest completes the grid."""
    grid = tmp_path / "scan.yml"
    grid.write_text("threshold: [4000, 6000, 8000]\ntofsmearing: [0, 2]\nnhits: 200\n")
    pilot = run("BXRun", "--script", "cbcsim", "--yaml", grid, "-o", "scan1", "--pilot", "2",
                "--interval", "1", env=env)
    assert pilot.returncode == 0, pilot.stdout + pilot.stderr
    prod = tmp_path / "prod" / "scan1"
    assert sorted(s for _, s, _ in ledger_states(prod).values()) == ["done"] * 2 + ["planned"] * 4

    status = run("BXRun", "--status", "-o", "scan1", env=env)
    assert status.returncode == 0, status.stderr
    assert re.search(r"tasks: 6 .*planned 4 \(66\.7%\).*done 2 \(33\.3%\)", status.stdout), status.stdout
    assert "2/6 33.3%" in status.stdout and "100.0%" not in status.stdout
    assert "ETA" not in status.stdout  # nothing runs: no ETA
    assert "not running" in status.stdout

    page = (prod / "status.html").read_text()
    assert "<b>2/6</b> tasks done (33.3%)" in page and "planned" in page

    shell = pexpect.spawn(str(BIN / "timecal"), env=env, encoding="utf-8", dimensions=(50, 200),
                          timeout=60, cwd=str(tmp_path))
    try:
        shell.expect("timecal>")
        shell.sendline("productions")
        shell.expect(r"scan1\s+cbcsim\s+6\s+2/0/0/4\s")
        shell.expect("timecal>")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)

    plot = run("plotScan", "-i", "scan1", "--only", "efficiency", "--formats", "png", env=env)
    assert plot.returncode == 2, plot.stdout + plot.stderr
    line = plot.stderr.strip().splitlines()[-1]
    assert "4 of the 6 grid points have no finished task" in line, line
    for params, state, _ in ledger_states(prod).values():  # every point not run is named
        named = f"threshold={params['threshold']}, tofsmearing={params['tofsmearing']}"
        assert (named in line) == (state == "planned"), (named, line)
    allowed = run("plotScan", "-i", "scan1", "--only", "efficiency", "--formats", "png",
                  "--allow-missing", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert "4 of the 6 grid points have no finished task" in allowed.stderr
    index = (tmp_path / "scans" / "scan1" / "index.html").read_text()
    assert "4 of the 6 grid points" in index

    rest = run("BXRun", "--script", "cbcsim", "-o", "scan1", "--interval", "1", env=env)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "4 new, 2 already done" in rest.stdout
    assert "production complete: 6 tasks done" in rest.stdout
    assert sorted(s for _, s, _ in ledger_states(prod).values()) == ["done"] * 6


def test_plotscan_names_a_few_missing_points_and_counts_the_rest(tmp_path, env):
    """plotScan's grid is the planned one: with 7 of 20 points missing it says 7 (it used to
    say 3: its grid came from the finished tasks only, and a value with no finished task
    vanished); past a few it names some and counts the others."""
    grid = tmp_path / "scan.yml"
    grid.write_text("threshold: [3000, 4000, 5000, 6000, 7000]\ntofsmearing: [0, 1, 2, 3]\nnhits: 100\n")
    first = run("BXRun", "--script", "cbcsim", "--yaml", grid, "-o", "big", "--interval", "1", env=env,
                timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    prod = tmp_path / "prod" / "big"
    results = sorted((prod / "results").glob("*__*"))
    gone = [d for d in results if "threshold7000" in d.name] + \
        [d for d in results if "tofsmearing3p0" in d.name and "threshold7000" not in d.name][:3]
    assert len(gone) == 7
    for d in gone:
        (d / "params.json").unlink()  # no longer a result
    plot = run("plotScan", "-i", "big", "--only", "efficiency", "--formats", "png", env=env)
    assert plot.returncode == 2
    line = plot.stderr.strip().splitlines()[-1]
    assert "7 of the 20 grid points have no finished task" in line, line
    assert "and 2 more" in line and "--allow-missing" in line


def test_a_stopped_production_shows_no_eta_and_stop_counts_what_is_left(tmp_path, env):
    """Defect 7: ``timecal stop`` of a driver with cancelled tasks says how many tasks are
    left to run (the cancelled ones too: the next run runs them); ``--status`` of the
    stopped production shows no ETA."""
    from timecal_core.control.unix_socket import SocketChannel

    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2, 3, 4, 5, 6, 7, 8]\nseconds: 30\n")
    started = run("BXRun", "--script", "sleeper", "--yaml", grid, "-o", "long", "--interval", "1",
                  "--detach", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    prod = tmp_path / "prod" / "long"
    record = json.loads((prod / ".control" / "driver.json").read_text())
    channel = SocketChannel(record["socket"])
    try:
        ids = sorted(ledger_states(prod))
        assert channel.request("cancel", tasks=ids[:6])["changed"] == 6
    finally:
        channel.close()
    stop = run("timecal", "stop", "long", env=env, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert re.search(r"8 tasks left to run \(6 cancelled, 2 pending\)", stop.stdout), stop.stdout
    assert "0 tasks left" not in stop.stdout + (prod / "logs" / "driver.log").read_text()
    status = run("BXRun", "--status", "-o", "long", env=env)
    assert status.returncode == 0, status.stderr
    assert "ETA" not in status.stdout and "not running" in status.stdout


def test_detach_from_a_driver_with_nothing_left_says_it_ends(tmp_path, env):
    """Defect 7: every task failed for good, the monitor lingers; ``detach`` used to say the
    driver goes on while it exited at once. Now it says the driver ends, and it does."""
    grid = tmp_path / "grid.yml"
    grid.write_text("index: [1, 2]\nexit_code: 4\n")
    term = pexpect.spawn(str(BIN / "BXRun"), ["--script", "sleeper", "--yaml", str(grid), "-o", "bad",
                                              "--interval", "1", "--max-retries", "1"],
                         env=env, encoding="utf-8", dimensions=(50, 200), timeout=120)
    try:
        term.expect("nothing left to run: 2 failed for good")
        term.expect(PROMPT)
        term.sendline("detach")
        term.expect("nothing is left to run, so the driver ends")
        term.expect(pexpect.EOF)
        term.close()
        assert "the driver goes on" not in term.before
    finally:
        term.close(force=True)
    record = json.loads((tmp_path / "prod" / "bad" / ".control" / "driver.json").read_text())

    def ended():
        try:
            os.kill(record["pid"], 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{record['pid']}/stat").read().rpartition(")")[2].split()[0] == "Z"
    wait_for(ended, what="the driver to end")
