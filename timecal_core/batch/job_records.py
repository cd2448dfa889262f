"""The production's record of its batch jobs: each job is noted in the ledger when first
seen (its id, where it can be found, the worker it runs), so that whoever must find it later,
the next driver after a killed one or a user on another login node, reads it there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence


def job_record(label: str, location: str, worker: str) -> str:
    """The ledger's note of a job first seen, e.g. ``slurm job 4711 runs worker timecal-3``
    (``htcondor job 812.0 on schedd bigbird17.cern.ch runs worker ...``): whoever must find
    the job later (the next driver, a user on another login node) reads it there."""
    return f"{label}{f' on {location}' if location else ''} runs worker {worker}"


#: A :func:`job_record` as the engine notes it (``<backend>: ...``).
_RECORD = re.compile(r"^(?P<backend>\w+): (?P=backend) job (?P<job>\S+)(?: on (?P<where>.+?))? runs worker "
                     r"(?P<worker>\S+)$")
#: Jobs of earlier drivers asked about at a start: the most recent ones (a driver that ended
#: normally removed its own; one killed left at most the jobs it ran last).
EARLIER_JOBS = 5000


def earlier_jobs(notes: Callable[[str, int], Sequence[str]], backend: str) -> dict[str, tuple[str, str]]:
    """Job id -> (where, worker name) of the jobs earlier drivers of this production recorded
    (``notes``: :attr:`timecal_core.contract.hookspecs.BackendRequest.notes`)."""
    found = {}
    for note in notes(" runs worker ", EARLIER_JOBS):
        match = _RECORD.match(note)
        if match and match["backend"] == backend:
            found[match["job"]] = (match["where"] or "", match["worker"])
    return found
