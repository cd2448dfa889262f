"""A real terminal for the tests that a person's terminal matters to (Ctrl-C, a window
closed under a monitor, a newcomer's session): a tmux session on a server of its own
(its own socket), driven with send-keys and read with capture-pane."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest


class Tmux:
    def __init__(self, workdir: Path, env: dict, bin_dir: Path, name: str = "t",
                 size: tuple[int, int] = (160, 50)):
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed")
        self.socket = str(Path(workdir) / f"tmux-{name}")
        self.env = env
        self.name = name
        self.tmux("new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]),
                  "bash --norc --noprofile")
        self.send(f"export PS1='$ ' TIMECAL_CONFIG={env['TIMECAL_CONFIG']} "
                  f"XDG_STATE_HOME={env['XDG_STATE_HOME']} PATH={bin_dir}:$PATH; cd {workdir}; clear")
        self.wait(r"^\$ ?$")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              env=self.env, check=True).stdout

    def send(self, *keys: str, enter: bool = True) -> None:
        self.tmux("send-keys", "-t", self.name, *keys, *(["Enter"] if enter else []))

    def screen(self) -> str:
        """The whole scrollback and screen, trailing blank lines dropped."""
        return self.tmux("capture-pane", "-p", "-t", self.name, "-S", "-2000").rstrip("\n")

    def wait(self, pattern: str, timeout: float = 180, after: int = 0) -> str:
        """The screen from line ``after`` on, once ``pattern`` (multiline) is in it."""
        deadline = time.time() + timeout
        rx = re.compile(pattern, re.M)
        while time.time() < deadline:
            text = "\n".join(self.screen().split("\n")[after:])
            if rx.search(text):
                return text
            time.sleep(0.3)
        pytest.fail(f"the terminal never showed {pattern!r}:\n" + "\n".join(self.screen().split("\n")[after:]))

    def type(self, command: str) -> int:
        """Type ``command`` and Enter; the line after its echo (what it prints starts there)."""
        at = self.mark()
        self.send(command)
        tail = command[-40:]
        deadline = time.time() + 60
        while time.time() < deadline:
            lines = self.screen().split("\n")
            joined = "".join(lines[at:])  # a long command wraps
            if tail in joined:
                seen, n = "", at
                while n < len(lines) and tail not in seen:
                    seen += lines[n]
                    n += 1
                return n
            time.sleep(0.2)
        pytest.fail(f"the terminal never echoed {command!r}")

    def mark(self) -> int:
        """The line where what comes next starts (``wait(..., after=mark)``): the last line,
        the prompt the next command is typed at (a monitor redraws it in place)."""
        return max(0, self.screen().count("\n"))

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)
