"""The home shell, used as a person would in a real terminal (pexpect): every production
with its driver alive or dead, a script's parameters, the plugins' commands (the analysis
plugin's plot/calibrate arrive as a cmd2 CommandSet through the timecal_commands hook),
starting a production from it and coming back with 'detach'."""

import subprocess
import sys
from pathlib import Path

import pexpect

BIN = Path(sys.executable).parent


def test_the_home_shell_over_every_production(tmp_path, env):
    (tmp_path / "grid.yml").write_text("index: [1, 2]\n")
    done = subprocess.run([str(BIN / "BXRun"), "--script", "sleeper", "--yaml",
                           str(tmp_path / "grid.yml"), "-o", "finished", "--interval", "1"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "long.yml").write_text("index: [1]\nseconds: 60\n")
    shell = pexpect.spawn(str(BIN / "timecal"), env=env, encoding="utf-8", dimensions=(50, 200),
                          timeout=60, cwd=str(tmp_path))
    try:
        shell.expect("timecal>")
        shell.sendline("productions")
        shell.expect(r"finished\s+sleeper\s+2\s+2/0/0/0\s+-")
        shell.expect("timecal>")
        shell.sendline("params sleeper")
        shell.expect(r"seconds\s+float\s+0\.0\s+.*how long the task sleeps")
        shell.expect("timecal>")
        shell.sendline("help")
        shell.expect("Analysis")
        shell.expect("timecal>")
        shell.sendline("help plot")
        shell.expect("options of plotScan")
        shell.expect("timecal>")
        shell.sendline("calibrate --version")  # a plugin's command speaks the same words
        shell.expect("runCalibration: timecal-analysis")
        shell.expect("timecal>")
        # start a production from the home shell: its monitor opens, 'detach' comes back
        shell.sendline("run --script sleeper --yaml long.yml -o running --interval 1")
        shell.expect(r"timecal \d+/1>")
        shell.sendline("detach")
        shell.expect("detached: the driver goes on")
        shell.expect("timecal>")
        shell.sendline("productions")
        shell.expect(r"running\s+sleeper\s+1\s+\S+\s+alive")
        shell.expect("timecal>")
        shell.sendline("stop running")
        shell.expect("asked the driver")
        shell.expect("timecal>")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
