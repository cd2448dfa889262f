"""The schedd's view of the workers' jobs, through the HTCondor Python bindings.

The v2 bindings (``htcondor2``, HTCondor >= 24) are preferred; the classic ``htcondor``
module of older sites offers the same ``Schedd.query``/``Schedd.act`` used here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from timecal_core.errors import UserError

try:
    import htcondor2 as htcondor
except ImportError:  # pragma: no cover - sites with the classic bindings only
    import htcondor

REQUIRED = ("condor_submit", "condor_rm")

#: JobStatus codes of the job ClassAd.
STATES = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held",
          6: "transferring output", 7: "suspended"}
ENDED = frozenset({"removed", "completed"})
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "JobCurrentStartDate",
              "EnteredCurrentStatus", "ServerTime"]


def require_commands() -> None:
    """dask-jobqueue submits with condor_submit and removes with condor_rm."""
    for command in REQUIRED:
        if shutil.which(command) is None:
            raise UserError(f"--dask htcondor: '{command}' not found: the htcondor backend needs the "
                            f"HTCondor client commands ({', '.join(REQUIRED)}) on PATH and a schedd "
                            f"to submit to; run BXRun on a submit node (e.g. lxplus), or use --dask local")


@dataclass(frozen=True)
class QueueRow:
    job_id: str  # ClusterId.ProcId
    state: str
    reason: str  # HoldReason of held jobs
    started: float | None  # JobCurrentStartDate (epoch) of running jobs
    seconds: int  # time in the current state


def job_constraint(job_ids: list[str]) -> str:
    """A ClassAd expression selecting exactly these ``cluster.proc`` jobs."""
    terms = []
    for job_id in job_ids:
        cluster, _, proc = job_id.partition(".")
        terms.append(f"(ClusterId == {int(cluster)} && ProcId == {int(proc or 0)})")
    return " || ".join(terms) or "false"


def rows_from_ads(ads, now: float) -> dict[str, QueueRow]:
    rows = {}
    for ad in ads:
        job_id = f"{ad['ClusterId']}.{ad['ProcId']}"
        state = STATES.get(int(ad.get("JobStatus", 0)), f"status {ad.get('JobStatus')}")
        reason = str(ad.get("HoldReason", "")) if state == "held" else ""
        start = ad.get("JobCurrentStartDate")
        started = float(start) if state == "running" and isinstance(start, (int, float)) else None
        entered = ad.get("EnteredCurrentStatus")
        seconds = int(now - entered) if isinstance(entered, (int, float)) else 0
        rows[job_id] = QueueRow(job_id, state, reason, started, max(seconds, 0))
    return rows


def format_seconds(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class ScheddClient:
    """Queries and acts on the local schedd (located through the HTCondor configuration)."""

    def __init__(self, schedd=None):
        self._schedd = schedd

    @property
    def schedd(self):
        if self._schedd is None:
            try:
                self._schedd = htcondor.Schedd()
            except Exception as exc:  # the bindings raise HTCondorException / RuntimeError
                raise UserError(f"cannot reach the HTCondor schedd through the Python bindings: {exc}; "
                                f"is this a submit node (condor_q works)?") from None
        return self._schedd

    def query(self, job_ids: list[str], now: float) -> dict[str, QueueRow]:
        if not job_ids:
            return {}
        ads = self.schedd.query(constraint=job_constraint(job_ids), projection=PROJECTION)
        return rows_from_ads(ads, now)

    def act(self, action: str, job_ids: list[str], reason: str) -> None:
        """``action``: Release or Remove (a name of ``htcondor.JobAction``)."""
        self.schedd.act(getattr(htcondor.JobAction, action), list(job_ids), reason=reason)

