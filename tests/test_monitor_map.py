"""The scan seen as a map, in a real terminal: a production of the test plugin's ``sleeper``
over index x level with failures planted in one corner (index >= 3 and level >= 2 exit 4),
driven through the real ``BXRun`` monitor in a pseudo-terminal of 80 columns (pexpect): the
grid map, ``errors by``, selections in ``tasks``/``log``/``retry``, tab completion of
parameter names and values, then ``BXRun --status --grid`` in a pipe (no colour)."""

import json
import os
import signal
import socket
import re
import sqlite3
import sys
import time
from pathlib import Path

import pexpect
import pytest

from conftest import ledger_states as states
from conftest import run_bxrun

BXRUN = str(Path(sys.executable).with_name("BXRun"))
PROMPT = r"timecal \d+/\d+>"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
GRID = "index: [0, 1, 2, 3, 4, 5]\nlevel: [0, 1, 2, 3]\nfail_index_min: 3\nfail_level_min: 2\n"


def stop_driver(prod: Path) -> None:
    """The driver runs in a process of its own: a test that failed midway must not leave it
    running (its interval is an hour)."""
    try:
        record = json.loads((prod / ".control" / "driver.json").read_text())
        if not record.get("stopped"):
            os.killpg(int(record["pid"]), signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        pass


def failed_twice(prod: Path) -> list[str]:
    """Tasks with two failed attempts in the ledger's history (a retry that failed again)."""
    db = sqlite3.connect(f"file:{prod / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        return [t for t, n in db.execute("SELECT task_id, COUNT(*) FROM events WHERE state='error' "
                                         "GROUP BY task_id") if n == 2]
    finally:
        db.close()


def wait_for(predicate, prod: Path, timeout: float = 90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            rows = states(prod)
            if rows and predicate(rows):
                return rows
        except sqlite3.Error:
            pass
        time.sleep(0.3)
    pytest.fail(f"the ledger never reached the expected state: {states(prod)}")


def screen(child, line: str, end: str, raw: bool = False) -> str:
    """Type a command, return what arrived up to ``end`` (a pattern of its output's last
    line), escape sequences removed unless ``raw``. Alerts that arrived meanwhile (tasks
    failing) are printed above, so the text may start with them. Types once the screen has
    been quiet for half a second (not while the prompt is being redrawn for an alert)."""
    for _ in range(20):
        if child.expect([pexpect.TIMEOUT, PROMPT], timeout=0.5) == 0:
            break
    child.sendline(line)
    child.expect(end)
    text = child.before + child.after
    child.expect(PROMPT)
    return text if raw else ANSI.sub("", text)


def map_rows(text: str) -> dict[str, str]:
    """Row label -> the cell characters of a grid map."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(\S+) \| (.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)[::2]
    return rows


def test_the_failing_region_shows_on_the_map_and_selections_act_on_it(tmp_path, env):
    (tmp_path / "grid.yml").write_text(GRID)
    prod = tmp_path / "prod" / "map"
    child = pexpect.spawn(BXRUN, ["--script", "sleeper", "--yaml", str(tmp_path / "grid.yml"), "-o", "map",
                                  "--interval", "3600", "--max-retries", "1"],
                          env=env, encoding="utf-8", dimensions=(60, 80), timeout=120, cwd=str(tmp_path))
    try:
        child.expect(PROMPT)
        wait_for(lambda rows: sum(s in ("done", "error") for _, s, _ in rows.values()) == 24, prod)

        raw_child_map = screen(child, "grid index level", r"cancelled \(\d+ cells?\)", raw=True)
        text = ANSI.sub("", raw_child_map)
        assert map_rows(text) == {"3": "###XXX", "2": "###XXX", "1": "######", "0": "######"}, text
        assert "X some failed for good (6 cells)" in text and "# all done (18 cells)" in text
        assert "\x1b[1;31mX" in raw_child_map  # a terminal: the failed cells in red
        the_map = text[text.index("grid index (across)"):]
        assert max(len(line) for line in the_map.splitlines()) <= 80, the_map

        text = screen(child, "errors by", r"level +\d\.\d\d.*")
        assert re.search(r"all 6 (exit 4 )?failures have index >= 3 and level >= 2", text), text

        text = screen(child, "errors", r"in the failing region")
        # one group (same cause, same message); its tasks share no single index or level
        assert re.search(r"^6\s+(exit 4\s+)?[0-9a-f]{10}\s+step sleep exited with code 4: planted failure: this "
                         r"task is in the failing region", text, re.M), text
        assert "all 6 have" not in text

        text = screen(child, "tasks level>=2 index>=3", r"task\(s\) match.*")
        assert len(re.findall(r"^[0-9a-f]{10}\s+error\s+1\s", text, re.M)) == 6, text
        assert "6 task(s) match level>=2 index>=3" in text
        text = screen(child, "tasks done level=3", r"task\(s\) match.*")
        assert "attempt  host" in text and "runtime  peak RSS" in text
        # attempt, host, runtime, peak RSS of each done task, then its directory
        done = re.findall(r"^[0-9a-f]{10}\s+done\s+1\s+(\S+)\s+\d+:\d\d:\d\d\s+([\d.]+) (KiB|MiB)\s+\S*level3__",
                          text, re.M)
        assert len(done) == 3 and all(host == socket.gethostname() for host, _, _ in done), text
        assert "3 task(s) match level=3" in text

        text = screen(child, "tasks lvl=3", r"parameters: [a-z, _]+")
        assert "'lvl=3': 'lvl' is not a parameter of this production; parameters: index, level" in text
        text = screen(child, "tasks level=7", r"level takes [0-9, ]+")
        assert "no task has level=7; level takes 0, 1, 2, 3" in text

        text = screen(child, "log index=5 level=3", r"is in the failing region")
        assert "index 5 level 3\nplanted failure: this task is in the failing region" in text, text

        text = screen(child, "retry index>=4 level=3", r"resubmitted \d+ task\(s\).*")
        assert "resubmitted 2 task(s)" in text, text
        deadline = time.time() + 90
        while time.time() < deadline and len(failed_twice(prod)) < 2:
            time.sleep(0.3)
        rows = states(prod)
        assert sorted((rows[t][0]["index"], rows[t][0]["level"]) for t in failed_twice(prod)) == \
            [(4, 3), (5, 3)]

        # tab completion: a parameter name (as 'name='), then its values, also after '>='
        # (which the terminal side treats as a word break)
        child.send("tasks lev\t")
        child.expect("el=")
        child.send("\t")
        child.expect(r"level=0 .*\n.*level=1 .*\n.*level=2 .*\n.*level=3 ")
        child.send("\x15")  # ctrl-U: clear the line
        child.send("retry index>=\t")
        child.expect(r"index>=0 .*\n.*index>=1 ")
        child.send("\x15")
        child.send("grid le\t")  # the axes of a map: the parameters that vary
        child.expect("vel")
        child.send("\x15")
        child.sendline("")
        child.expect(PROMPT)

        text = screen(child, "grid index level --metric failed", r"@(\x1b\[0m)? >=\d+%")
        assert map_rows(text) == {"3": "...@@@", "2": "...@@@", "1": "......", "0": "......"}, text
        assert "legend failed" in text

        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
        stop_driver(prod)

    status = run_bxrun("--status", "-o", "map", "--grid", "index", "level", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "\x1b[" not in status.stdout  # not a terminal: no colour
    assert map_rows(status.stdout[status.stdout.index("grid index"):]) == {
        "3": "###XXX", "2": "###XXX", "1": "######", "0": "######"}
    assert re.search(r"all 6 (exit 4 )?failures have index >= 3 and level >= 2", status.stdout)
    bad = run_bxrun("--status", "-o", "map", "--grid", "index", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "--grid index: give two parameters" in bad.stderr
