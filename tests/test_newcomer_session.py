"""Issue 22, checked by: a newcomer's session in a real terminal (tmux), each screen read as
they would read it. Pilot a 40-point emulator grid and say no to the rest; look at the
status; launch; press Ctrl-C in the monitor, then stop it; resume, cancel a slice, leave;
plot the unfinished grid. At every step the screen tells the truth (counts over the whole
grid, what is left, what to type next) and no traceback ever shows."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from conftest import ledger_states
from helpers.terminal import Tmux  # tests/ is on sys.path (rootdir, no __init__.py)

BIN = Path(sys.executable).parent
THRESHOLDS = [3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000]
SMEARINGS = [0, 1, 2, 3, 4]
PROMPT = r"timecal \d+/40> ?$"
SHELL = r"^\$ ?$"


def test_a_newcomer_from_pilot_to_plots_of_an_unfinished_grid(tmp_path, env):
    # 400,000 synthetic hits: about a second per task, so that the production is still
    # running when the newcomer presses Ctrl-C and types exit
    (tmp_path / "scan.yml").write_text(f"threshold: {THRESHOLDS}\ntofsmearing: {SMEARINGS}\n"
                                       "nhits: 400000\n")
    prod = tmp_path / "prod" / "first"
    term = Tmux(tmp_path, env, BIN, size=(200, 60))
    try:
        # 1. the pilot, in a terminal: it reports and asks
        at = term.type("BXRun --script cbcsim --yaml scan.yml -o first --pilot 2")
        screen = term.wait(r"launch the remaining 38 tasks\? \[y/N\] ?$", after=at)
        assert "BXRun: pilot: 2 of 40 tasks" in screen
        assert re.search(r"\w{10}\s+largest values\s+threshold=10000", screen)  # no work axis varies
        assert "extrapolated to the whole grid (40 tasks, 38 still to run" in screen
        at = term.type("n")
        screen = term.wait(SHELL, after=at)
        assert "not launched; the pilot's 2 tasks count as done. Launch the rest with: " \
               "BXRun --script cbcsim -o first" in screen

        # 2. the status: 40 tasks, 2 done, 38 planned, nothing running, no ETA
        at = term.type("BXRun --status -o first")
        screen = term.wait(SHELL, after=at)
        assert re.search(r"tasks: 40\s+planned 38 \(95\.0%\)\s+pending 0 \(0\.0%\)\s+running 0 \(0\.0%\)"
                         r"\s+done 2 \(5\.0%\)", screen), screen
        assert "2/40 5.0%  not running: 38 tasks left to run (38 planned)" in screen
        assert "ETA" not in screen and "100.0%" not in screen

        # 3. launch the rest: the monitor opens over the whole grid
        at = term.type("BXRun --script cbcsim -o first --interval 2")
        screen = term.wait(PROMPT, after=at)
        joined = screen.replace("\n", "")  # the line wraps at 200 columns, where depends on tmp_path
        assert "40 tasks from " in joined and "38 new, 2 already done" in joined
        assert "'detach' or closing this terminal leaves it running" in screen

        # 4. Ctrl-C: the monitor says what it did not do; exit asks, then stops
        at = term.mark()
        term.send("C-c", enter=False)
        term.wait(r"\^C \(the production goes on: its driver runs on its own; 'exit' stops it", after=at)
        at = term.type("exit")
        term.wait(r"task\(s\) not finished; stop them \(they resume on the next run\)\? \[y/N\] ?$", after=at)
        at = term.type("y")
        screen = term.wait(SHELL, after=at)
        stopped = re.search(r"BXRun: stopped by the user; (\d+) tasks left to run \(([^)]*)\): rerun the "
                            r"same command to resume", screen)
        assert stopped, screen
        left = int(stopped.group(1))
        states = ledger_states(prod)
        assert left == sum(1 for _, s, _ in states.values() if s != "done") > 0

        # 5. resume; cancel the last threshold's tasks still to run; leave
        at = term.type("BXRun --script cbcsim -o first --interval 2")
        screen = term.wait(PROMPT, after=at)
        # a task that was renaming its result into place as the driver stopped is done on disk
        # though the stop line counted it: the resume's count (disk, the truth) may be lower
        resumed = re.search(r"(\d+) new, (\d+) already done", screen.replace("\n", ""))  # wrapped, as in 3.
        assert resumed and int(resumed[1]) + int(resumed[2]) == 40 and 0 < int(resumed[1]) <= left, screen
        at = term.type("cancel threshold=10000")
        term.wait(r"cancelled \d+ task\(s\)", after=at)
        term.wait(r"nothing left to run: 0 failed for good, \d+ cancelled", after=at)
        at = term.type("detach")
        screen = term.wait(SHELL, after=at)
        assert "detached: nothing is left to run, so the driver ends" in screen
        states = ledger_states(prod)
        missing = sorted(p["tofsmearing"] for p, s, _ in states.values() if s != "done")
        assert missing and all(p["threshold"] == 10000 for p, s, _ in states.values() if s != "done")

        # 6. the plots of the unfinished grid: the missing points named, then plotted without them
        at = term.type("plotScan -i first --only efficiency --formats png")
        screen = term.wait(SHELL, after=at)
        assert f"{len(missing)} of the 40 grid points have no finished task" in screen
        assert "threshold=10000" in screen and "--allow-missing" in screen
        at = term.type("plotScan -i first --only efficiency --formats png --allow-missing")
        screen = term.wait(SHELL, timeout=600, after=at)
        assert re.search(r"plotScan: \d+ figure\(s\); open .*first/index\.html", screen), screen
        index = (tmp_path / "scans" / "first" / "index.html").read_text()
        assert f"{len(missing)} of the 40 grid points have no finished task" in index

        everything = term.screen()
        if os.environ.get("TIMECAL_TEST_SCREEN"):  # to read what the newcomer saw
            Path(os.environ["TIMECAL_TEST_SCREEN"]).write_text(everything)
        assert "Traceback" not in everything and "internal error" not in everything
    finally:
        term.kill()
    crashes = Path(env["XDG_STATE_HOME"]) / "timecal" / "crashes"
    assert not crashes.exists() or not list(crashes.iterdir())
