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

Nothing here follows a symbolic link: a link where a result directory goes (to a folder
outside the production, say) is neither a result nor a place to write one. It is moved
aside like an incomplete result, so that the task's new output is renamed into a real
directory of the production (:func:`completed` is the worker's side of the same rule).
The script may also say what a readable output is (``ProductionScript.verify``: a ROOT
file's header and top-level keys, not a full read): a truncated file is not done.

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
from collections.abc import Callable, Mapping
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
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: ``ProductionScript.verify``: None when an output (its path, a str) is readable, else why not
Verify = Callable[[str], "str | None"]


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
    #: a planned task's directory whose output the script's verify refuses: name -> why
    damaged: dict[str, str] = field(default_factory=dict)
    #: a symbolic link or plain file where a planned task's result directory goes: name -> what
    in_the_way: dict[str, str] = field(default_factory=dict)

    @property
    def to_move(self) -> list[str]:
        """Entries the planner moves aside before rerunning their tasks."""
        return self.incomplete + sorted(self.damaged) + sorted(self.in_the_way) + self.copies

    def only(self, task_id: str) -> ResultScan:
        """What concerns one task (``BXRun --run`` shares ``-o`` with other runs)."""
        def mine(names):
            kept = [n for n in names if n.rpartition(SEPARATOR)[2] == task_id]
            return {n: names[n] for n in kept} if isinstance(names, dict) else kept

        return ResultScan({k: v for k, v in self.done.items() if k == task_id}, mine(self.incomplete),
                          mine(self.copies), mine(self.foreign), mine(self.files), mine(self.damaged),
                          mine(self.in_the_way))

    def report(self) -> list[str]:
        """One line per kind found, with counts and a few names (and why, where known)."""
        def names(items: list[str] | dict[str, str]) -> str:
            keys = sorted(items) if isinstance(items, dict) else items
            shown = ", ".join(f"{k} ({items[k]})" if isinstance(items, dict) else k for k in keys[:SHOWN])
            return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")

        stale = f"{RESULTS}/{STALE}/"
        kinds = (  # what, (one, many), what becomes of it
            (self.damaged, ("result holds", "results hold"),
             f"an unreadable output and will be rerun (moved to {stale})"),
            (self.in_the_way, ("entry stands", "entries stand"),
             f"where a result directory goes and will be moved to {stale} (never followed, its task reruns)"),
            (self.incomplete, ("result directory is", "result directories are"),
             f"incomplete and will be rerun (moved to {stale})"),
            (self.copies, ("directory is a second copy", "directories are second copies"),
             f"of a task and not counted (moved to {stale})"),
            (self.foreign, ("directory does", "directories do"),
             "not belong to this grid (left in place, not counted)"),
            (self.files, ("plain file is", "plain files are"),
             "named like a result (left in place, not counted)"))
        return [f"{len(items)} {forms[len(items) != 1]} {fate}: {names(items)}"
                for items, forms, fate in kinds if items]


def _record(directory: str, dir_fd: int | None = None) -> dict | None:
    """The params.json of ``directory`` (relative to ``dir_fd`` if given), or None when it is
    missing, a symbolic link or unreadable."""
    try:  # os.open/os.read: a third of the cost of open() for 15,000 small files
        fd = os.open(directory + "/" + PARAMS_NAME, os.O_RDONLY | NOFOLLOW, dir_fd=dir_fd)
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


ABSENT = "absent"  # _output_problem: no non-empty output file at all (an incomplete result)


def _output_problem(directory: str, record: dict, dir_fd: int | None = None,
                    verify: Verify | None = None, base: str = "") -> str | None:
    """None when the output ``record`` names is a non-empty regular file (not a link) that
    ``verify`` accepts; :data:`ABSENT` when there is none; otherwise what is wrong with it."""
    output = record.get("output")
    if not isinstance(output, str) or not output or "/" in output or output.startswith("."):
        return ABSENT
    try:
        st = os.stat(directory + "/" + output, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return ABSENT
    if st.st_size == 0 or (st.st_mode & 0o170000) != 0o100000:  # a non-empty regular file
        return ABSENT
    if verify is None:
        return None
    try:  # a str: a Path object per result costs more than the check itself
        return verify(os.path.join(base, directory, output))
    except Exception as exc:  # a plugin's check must not take the planner down
        return f"its check failed: {type(exc).__name__}: {exc}"[:200]


def completed(results: Path, dirname: str, task_id: str, verify: Verify | None = None) -> dict | None:
    """The record of ``results/<dirname>`` when it is a done result of ``task_id``: a real
    directory (a link is not followed), a readable params.json naming the task, an output
    the script's ``verify`` accepts. The worker asks before running a task and when its
    rename into place fails."""
    try:
        fd = os.open(os.path.join(results, dirname), os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW)
    except OSError:
        return None
    try:
        record = _record(".", fd)
        if record is None or record.get("task_id") != task_id or \
                _output_problem(".", record, fd, verify, os.path.join(results, dirname)) is not None:
            return None
        return record
    finally:
        os.close(fd)


def describe_entry(path: Path) -> str:
    """What stands at ``path`` when it is not a directory: a link and its target, or a file."""
    try:
        return f"a symbolic link to {os.readlink(path)}"
    except OSError:
        return "a plain file" if os.path.lexists(path) else "nothing"


def _entries(results: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(results) as it:
            return [e for e in it if SEPARATOR in e.name and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def scan_results(results: Path, planned: Mapping[str, tuple[str, Mapping[str, Any]]],
                 verify: Verify | None = None) -> ResultScan:
    """Sort ``results/`` against a plan: ``planned`` maps task id -> (directory name,
    canonical parameters); ``verify`` is the script's check of an output."""
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
            expected = get(tid)
            if not entry.is_dir(follow_symlinks=False):
                if expected is not None and expected[0] == name:  # it blocks the task's rename
                    scan.in_the_way[name] = describe_entry(Path(results, name))
                else:
                    scan.files.append(name)
                continue
            if expected is None:
                scan.foreign.append(name)
                continue
            dirname, params = expected
            if name != dirname:
                scan.copies.append(name)
                continue
            record = _record(name, dir_fd)
            if record is None or record.get("task_id") != tid or record.get("params") != params:
                scan.incomplete.append(name)
                continue
            problem = _output_problem(name, record, dir_fd, verify, str(results))
            if problem == ABSENT:
                scan.incomplete.append(name)
            elif problem is not None:
                scan.damaged[name] = problem
            else:
                done[tid] = (os.path.join(results, name), record)
    finally:
        os.close(dir_fd)
    for kind in (scan.incomplete, scan.copies, scan.foreign, scan.files):
        kind.sort()
    return scan


def scan_without_plan(results: Path, verify: Verify | None = None, keep_records: bool = True,
                      keep: Callable[[dict], Any] | None = None) -> ResultScan:
    """Sort ``results/`` when the plan is not at hand (aggregators, plotScan): a result is
    done when its params.json is readable, holds parameters and the id its directory name
    ends with, and its output is there, not empty and accepted by ``verify``; of two such
    directories for one task, the first by name counts and the other is a copy. Whether the
    parameters are the planned ones needs the plan: the planner checks that, and has moved
    mismatches aside before a production's aggregators run. Without ``keep_records`` the
    records are not kept (``done`` maps to (path, None)): a 100,000-task listing then holds
    paths, not 100,000 decoded params.json; ``keep(record)`` keeps what it returns instead."""
    scan = ResultScan()
    for entry in sorted(_entries(results), key=lambda e: e.name):
        tid = entry.name.rpartition(SEPARATOR)[2]
        if not entry.is_dir(follow_symlinks=False):
            scan.files.append(entry.name)
            continue
        record = _record(entry.path)
        params = record.get("params") if record else None
        if record is None or record.get("task_id") != tid or not isinstance(params, dict):
            scan.incomplete.append(entry.name)
            continue
        problem = _output_problem(entry.path, record, verify=verify)
        if problem == ABSENT:
            scan.incomplete.append(entry.name)
            continue
        if problem is not None:
            scan.damaged[entry.name] = problem
            continue
        if tid in scan.done:
            scan.copies.append(entry.name)
            continue
        scan.done[tid] = (entry.path, keep(record) if keep is not None else
                          record if keep_records else None)
    return scan


def move_aside(results: Path, names: list[str]) -> Path | None:
    """Move ``names`` (entries of ``results/``) into ``results/.stale/``, never overwriting
    anything already there. Call with the production lock held, before submitting."""
    if not names:
        return None
    stale = real_directory(Path(results) / STALE)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in names:
        target = stale / name
        k = 0
        while os.path.lexists(target):  # a dangling link there is something too
            k += 1
            target = stale / f"{name}.{stamp}.{k}"
        os.rename(Path(results) / name, target)
    return stale


def real_directory(path: Path) -> Path:
    """``path`` as a directory of its own, created if absent: a symbolic link there (to a
    folder outside the production, or another user's) is replaced by a real directory, the
    link kept beside it as ``NAME.link-<time>`` (nothing is deleted, nothing written through
    it). For timecal's own folders under ``results/`` (.tmp, .stale, .logs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path)
        return path
    except FileExistsError:
        pass
    if not os.path.islink(path) and os.path.isdir(path):
        return path
    os.rename(path, path.with_name(f"{path.name}.link-{time.strftime('%Y%m%d-%H%M%S')}"))
    os.mkdir(path)
    return path
