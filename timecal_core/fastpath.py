"""The gate every fast path on a library's private API goes through.

A fast path that reaches into a library's internals is only known to work with the releases
it was tested with. Outside them (a ``pip install -U`` away) it must step aside for the
library's public path, and say so once, naming the library, its version and what the plain
path costs: slower is acceptable, silently wrong or silently slower is not. Inside them, any
exception of the fast path falls back to the plain path for that call and is said once too.

The version is the one the library reports (``module.__version__``), read once per process,
when the fast path is first asked for. A refusal is said once for a process and the processes
it starts afterwards (a production's driver, its workers and their steps): they inherit an
environment variable saying it was said.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import TextIO


def release(version: str) -> tuple[int, ...] | None:
    """The leading numbers of a version string: "3.10.0rc1" -> (3, 10, 0); None if none."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(n) for n in match.group(0).split(".")) if match else None


@dataclass
class FastPath:
    """One fast path: ``library`` (an importable module name), the oldest and newest releases
    it was tested with (``"3.7"`` .. ``"3.11"``: every release of those series and between
    them), what it is called, what runs instead and what that costs. ``usable()`` is the gate;
    ``failed(exc)`` is called when the fast path raised and the plain path takes over."""

    library: str
    oldest: str
    newest: str
    what: str  # "the layered PDF writer"
    plain: str  # "matplotlib's savefig"
    cost: str  # "~3x the CPU per PDF"
    stream: TextIO | None = None  # where the lines go (default: sys.stderr at the time)
    _verdict: bool | None = field(default=None, init=False, repr=False)
    _version: str = field(default="", init=False, repr=False)
    _said_failure: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def said_variable(self) -> str:
        """The environment variable telling the processes this one starts (a production's
        workers and steps, plotScan's workers) that the refusal was said: they inherit it."""
        return f"TIMECAL_SAID_{re.sub(r'[^A-Z0-9]', '_', self.library.upper())}_UNTESTED"

    @property
    def version(self) -> str:
        if self._verdict is None:
            self.usable()
        return self._version

    def in_range(self, version: str) -> bool:
        found = release(version)
        if found is None:
            return False
        low, high = release(self.oldest), release(self.newest)
        assert low is not None and high is not None, (self.oldest, self.newest)
        return low <= found[: len(low)] and found[: len(high)] <= high

    def tested(self) -> bool:
        """Whether the library's version is in the tested range, without deciding or saying
        anything (for work done ahead, e.g. in a server that forks the processes that use the
        fast path: they decide, and say it where their output goes)."""
        return self.in_range(str(getattr(importlib.import_module(self.library), "__version__", "unknown")))

    def usable(self) -> bool:
        """True if the library's version is one the fast path was tested with. Decided once
        per process; the first refusal prints one line."""
        if self._verdict is not None:
            return self._verdict
        with self._lock:
            if self._verdict is None:
                version = str(getattr(importlib.import_module(self.library), "__version__", "unknown"))
                self._version = version
                verdict = self.in_range(version)
                if not verdict and os.environ.get(self.said_variable) != version:
                    self._say(
                        f"{self.library} {version} not tested with {self.what} (tested: "
                        f"{self.oldest} to {self.newest}): using {self.plain} ({self.cost})"
                    )
                    # The processes this one starts (workers, steps) decide alike: said once.
                    os.environ[self.said_variable] = version
                self._verdict = verdict
        return self._verdict

    def failed(self, exc: BaseException) -> None:
        """The fast path raised ``exc``; the caller takes the plain path for this call. Said
        once per process (the first failure names the exception)."""
        with self._lock:
            if self._said_failure:
                return
            self._said_failure = True
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        self._say(
            f"{self.what} failed with {self.library} {self.version} ({text}): using {self.plain} "
            f"for every call it fails on ({self.cost}); please report it"
        )

    def reset(self) -> None:
        """Forget the verdict and what was said (for tests)."""
        with self._lock:
            self._verdict, self._version, self._said_failure = None, "", False
            os.environ.pop(self.said_variable, None)

    def _say(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(f"timecal: {line}", file=stream, flush=True)
