"""When a task counts as done: the one rule shared by the planner, ``--rebuild-ledger`` and
the aggregators.

A directory name proves nothing (a copy, a deleted ROOT file, a hand-made directory, a plain
file all carry one), and a task counted done wrongly is a silently missing point of the
scan. So a task is done only when ``results/<its planned directory>/params.json`` is
readable, names the task's id, holds exactly the planned canonical parameters, and the
output file it names exists and is not empty. Anything else under ``results/`` that looks
like a task is never counted; the planner reports each kind in one line and moves the
incomplete ones and the second copies aside into ``results/.stale/`` (never deleting: what
the user made by hand is theirs), so that they are rerun.

Planning 30,000 points must stay well under a second with half of them done, so this reads
what it must in one pass: one directory listing, then for each directory of a planned task
its ``params.json`` and one ``stat`` of its output; directories of other tasks are not
opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = "results"
SEPARATOR = "__"  # <readable>__<task id>
PARAMS_NAME = "params.json"
STALE = ".stale"  # incomplete results and second copies, moved aside by the planner
ID_LENGTH = 10
SHOWN = 3  # names quoted per kind in the planner's report
READ_SIZE = 1 << 16
_loads = json.JSONDecoder().decode


def task_id_of(params: Mapping[str, Any]) -> str:
    """The task id of a canonical parameter set: its JSON in name order, hashed (the grid
    computes the same thing from per-axis fragments)."""
    fragments = (json.dumps(k) + ":" + json.dumps(params[k], sort_keys=True) for k in sorted(params))
    return hashlib.sha1(("{" + ",".join(fragments) + "}").encode()).hexdigest()[:ID_LENGTH]


@dataclass
class ResultScan:
    """What ``results/`` holds, sorted into kinds. ``done`` maps task id -> (directory path,
    params.json record); the lists hold entry names under ``results/``."""

    done: dict[str, tuple[str, dict]] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # a planned task's directory, not complete
    copies: list[str] = field(default_factory=list)  # another directory claiming a planned task
    foreign: list[str] = field(default_factory=list)  # a directory of no task of this grid
    files: list[str] = field(default_factory=list)  # a plain file named like a task

    @property
    def to_move(self) -> list[str]:
        """Entries the planner moves aside before rerunning their tasks."""
        return self.incomplete + self.copies

    def only(self, task_id: str) -> ResultScan:
        """What concerns one task (``BXRun --run`` shares ``-o`` with other runs)."""
        def mine(names: list[str]) -> list[str]:
            return [n for n in names if n.rpartition(SEPARATOR)[2] == task_id]

        return ResultScan({k: v for k, v in self.done.items() if k == task_id}, mine(self.incomplete),
                          mine(self.copies), mine(self.foreign), mine(self.files))

    def report(self) -> list[str]:
        """One line per kind found, with counts and a few names."""
        def names(items: list[str]) -> str:
            shown = ", ".join(items[:SHOWN])
            return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")

        def n(count: int, one: str, many: str) -> str:
            return f"{count} {one if count == 1 else many}"

        lines = []
        if self.incomplete:
            lines.append(f"{n(len(self.incomplete), 'result directory is', 'result directories are')} "
                         f"incomplete and will be rerun (moved to {RESULTS}/{STALE}/): "
                         f"{names(self.incomplete)}")
        if self.copies:
            lines.append(f"{n(len(self.copies), 'directory is a second copy', 'directories are second copies')}"
                         f" of a task and not counted (moved to {RESULTS}/{STALE}/): {names(self.copies)}")
        if self.foreign:
            lines.append(f"{n(len(self.foreign), 'directory does', 'directories do')} not belong to this "
                         f"grid (left in place, not counted): {names(self.foreign)}")
        if self.files:
            lines.append(f"{n(len(self.files), 'plain file is', 'plain files are')} named like a result "
                         f"(left in place, not counted): {names(self.files)}")
        return lines


def _record(directory: str, dir_fd: int | None = None) -> dict | None:
    """The params.json of ``directory`` (relative to ``dir_fd`` if given), or None when it is
    missing or unreadable."""
    try:  # os.open/os.read: a third of the cost of open() for 15,000 small files
        fd = os.open(directory + "/" + PARAMS_NAME, os.O_RDONLY, dir_fd=dir_fd)
        try:
            data = os.read(fd, READ_SIZE)
            while len(data) % READ_SIZE == 0 and data:  # a record larger than READ_SIZE
                more = os.read(fd, READ_SIZE)
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        record = _loads(data.decode("utf-8"))  # str: json.loads(bytes) sniffs the encoding first
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return record if isinstance(record, dict) else None


def _output_ok(directory: str, record: dict, dir_fd: int | None = None) -> bool:
    output = record.get("output")
    if not isinstance(output, str) or not output or "/" in output or output.startswith("."):
        return False
    try:
        st = os.stat(directory + "/" + output, dir_fd=dir_fd)
    except OSError:
        return False
    return st.st_size > 0 and (st.st_mode & 0o170000) == 0o100000  # a non-empty regular file


def _entries(results: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(results) as it:
            return [e for e in it if SEPARATOR in e.name and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def scan_results(results: Path, planned: Mapping[str, tuple[str, Mapping[str, Any]]]) -> ResultScan:
    """Sort ``results/`` against a plan: ``planned`` maps task id -> (directory name,
    canonical parameters)."""
    scan = ResultScan()
    try:  # names resolved from results/ itself, not from / for each of 15,000 files
        dir_fd = os.open(results, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return scan
    done, get = scan.done, planned.get
    try:
        with os.scandir(dir_fd) as it:
            entries = [e for e in it if SEPARATOR in e.name and not e.name.startswith(".")]
        for entry in entries:
            name = entry.name
            tid = name.rpartition(SEPARATOR)[2]
            if not entry.is_dir(follow_symlinks=False):
                scan.files.append(name)
                continue
            expected = get(tid)
            if expected is None:
                scan.foreign.append(name)
                continue
            dirname, params = expected
            if name != dirname:
                scan.copies.append(name)
                continue
            record = _record(name, dir_fd)
            if (record is None or record.get("task_id") != tid or record.get("params") != params
                    or not _output_ok(name, record, dir_fd)):
                scan.incomplete.append(name)
                continue
            done[tid] = (os.path.join(results, name), record)
    finally:
        os.close(dir_fd)
    for kind in (scan.incomplete, scan.copies, scan.foreign, scan.files):
        kind.sort()
    return scan


def scan_without_plan(results: Path) -> ResultScan:
    """Sort ``results/`` when the plan is not at hand (aggregators, plotScan): a result is
    done when its params.json is readable, holds parameters and the id its directory name
    ends with, and its output is there and not empty; of two such directories for one task,
    the first by name counts and the other is a copy. Whether the parameters are the planned
    ones needs the plan: the planner checks that, and has moved mismatches aside before a
    production's aggregators run."""
    scan = ResultScan()
    for entry in sorted(_entries(results), key=lambda e: e.name):
        tid = entry.name.rpartition(SEPARATOR)[2]
        if not entry.is_dir(follow_symlinks=False):
            scan.files.append(entry.name)
            continue
        record = _record(entry.path)
        params = record.get("params") if record else None
        if (record is None or record.get("task_id") != tid or not isinstance(params, dict)
                or not _output_ok(entry.path, record)):
            scan.incomplete.append(entry.name)
            continue
        if tid in scan.done:
            scan.copies.append(entry.name)
            continue
        scan.done[tid] = (entry.path, record)
    return scan


def move_aside(results: Path, names: list[str]) -> Path | None:
    """Move ``names`` (entries of ``results/``) into ``results/.stale/``, never overwriting
    anything already there. Call with the production lock held, before submitting."""
    if not names:
        return None
    stale = Path(results) / STALE
    stale.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in names:
        target = stale / name
        k = 0
        while target.exists():
            k += 1
            target = stale / f"{name}.{stamp}.{k}"
        os.rename(Path(results) / name, target)
    return stale
