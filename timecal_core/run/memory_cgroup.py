"""The memory cgroup this process runs in: how often the kernel's OOM killer struck there,
and its limit.

A batch system that enforces memory (SLURM's task/cgroup, HTCondor with cgroups) puts each
job into a memory cgroup of its request. When the job's processes together reach it, the
kernel kills the largest of them, nearly always the step (CMSSW), with SIGKILL: from the step
server's side an ordinary ``kill -9``, and often well below the fraction of the worker's
limit that :mod:`timecal_core.causes` takes for an OOM kill, because the worker, its nanny
and the step server count against the same limit. The kernel's own count of its OOM kills
in the cgroup tells it apart. cgroup v1 (``memory.oom_control``: ``oom_kill``, counted in
the victim's cgroup, which is the worker's: steps inherit it) and v2 (``memory.events``) are
both read; where neither can be read the answer is None and nothing changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

#: cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above is none.
_UNLIMITED = 1 << 60


@lru_cache(maxsize=1)
def _own_directory() -> tuple[Path, Path] | None:
    """(this process's memory cgroup directory, the mount point above which it cannot go);
    looked up once: a worker stays in its job's cgroup."""
    try:
        groups = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1 = v2 = None
    for line in groups:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            v1 = path
        elif controllers == "":
            v2 = path
    for line in mounts:
        fields = line.split()
        dash = fields.index("-")
        root, point, fstype, options = fields[3], fields[4], fields[dash + 1], fields[-1]
        if v1 is not None and fstype == "cgroup" and "memory" in options.split(","):
            path = v1
        elif v1 is None and v2 is not None and fstype == "cgroup2":
            path = v2
        else:
            continue
        if not (path == root or path.startswith(root.rstrip("/") + "/")):
            continue  # this mount shows another part of the hierarchy
        directory = Path(point) / path[len(root.rstrip("/")):].lstrip("/")
        if (directory / "memory.oom_control").exists() or (directory / "memory.events").exists():
            return directory, Path(point)
    return None


def oom_kills() -> int | None:
    """OOM kills the kernel counted in this process's memory cgroup so far; None if unknown."""
    found = _own_directory()
    if found is None:
        return None
    directory = found[0]
    for name in ("memory.oom_control", "memory.events"):
        try:
            text = (directory / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def limit() -> int | None:
    """The tightest memory limit (bytes) on this process's cgroup and those above it."""
    found = _own_directory()
    if found is None:
        return None
    directory, top = found
    limits = []
    while True:
        for name in ("memory.limit_in_bytes", "memory.max"):
            try:
                value = (directory / name).read_text().strip()
            except OSError:
                continue
            if value.isdigit() and int(value) < _UNLIMITED:
                limits.append(int(value))
        if directory == top or top not in directory.parents:
            break
        directory = directory.parent
    return min(limits) if limits else None
