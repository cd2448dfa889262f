"""The schedd's view of the workers' jobs (job ClassAds through the HTCondor Python
bindings) and the client commands that act on them.

Queries go through the bindings (``htcondor2``, HTCondor >= 24; the classic ``htcondor``
module of older sites offers the same ``Schedd.query``/``history``); removing and
releasing go through ``condor_rm``/``condor_release``, the commands dask-jobqueue itself
uses, so that they work with whatever authentication the site's client tools have.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from timecal_core.batch import supervision
from timecal_core.contract.errors import UserError

try:
    import htcondor2 as htcondor
except ImportError:  # pragma: no cover - sites with the classic bindings only
    import htcondor

REQUIRED = ("condor_submit", "condor_rm", "condor_release")

#: JobStatus codes of the job ClassAd.
STATES = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held",
          6: "transferring output", 7: "suspended"}
#: What the backend tells about a job's end besides its state (``QueueRow.facts``): why it was
#: held (also after it was removed, held first) or removed.
FACTS = ("HoldReasonCode", "HoldReasonSubCode", "HoldReason", "LastHoldReasonCode", "LastHoldReason",
         "RemoveReason", "ReleaseReason")
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "JobCurrentStartDate",
              "EnteredCurrentStatus", "ServerTime", "GlobalJobId", "ExitCode", "ExitBySignal",
              "ExitSignal", "RemoveReason", "LastRejMatchReason", "HoldReasonCode", "HoldReasonSubCode",
              "LastHoldReason", "LastHoldReasonCode", "ReleaseReason"]


def require_commands() -> None:
    """dask-jobqueue submits with condor_submit and removes with condor_rm."""
    supervision.require_commands("htcondor", "HTCondor", REQUIRED,
                                 " and a schedd to submit to; run BXRun on a submit node (e.g. lxplus)")


@dataclass(frozen=True)
class QueueRow:
    job_id: str  # ClusterId.ProcId
    state: str
    reason: str  # HoldReason of held jobs, exit status of ended ones
    started: float | None  # JobCurrentStartDate (epoch) of running jobs
    seconds: int  # time in the current state
    schedd: str  # the schedd's name (from GlobalJobId): where the job can be found again
    facts: dict = field(default_factory=dict, compare=False)  # FACTS the ad has


def job_constraint(job_ids: list[str]) -> str:
    """A ClassAd expression selecting exactly these ``cluster.proc`` jobs."""
    terms = []
    for job_id in job_ids:
        cluster, _, proc = job_id.partition(".")
        terms.append(f"(ClusterId == {int(cluster)} && ProcId == {int(proc or 0)})")
    return " || ".join(terms) or "false"


def _reason(ad, state: str) -> str:
    if state == "held":
        return str(ad.get("HoldReason", ""))
    if state == "completed":
        if ad.get("ExitBySignal") is True:
            return f"killed by signal {ad.get('ExitSignal')}"
        return f"exit code {ad.get('ExitCode')}" if "ExitCode" in ad else ""
    if state == "removed":
        return str(ad.get("RemoveReason", ""))
    if state == "idle":
        return str(ad.get("LastRejMatchReason", ""))
    return ""


def rows_from_ads(ads, now: float) -> dict[str, QueueRow]:
    rows = {}
    for ad in ads:
        job_id = f"{ad['ClusterId']}.{ad['ProcId']}"
        state = STATES.get(int(ad.get("JobStatus", 0)), f"status {ad.get('JobStatus')}")
        start = ad.get("JobCurrentStartDate")
        started = float(start) if state == "running" and isinstance(start, (int, float)) else None
        entered = ad.get("EnteredCurrentStatus")
        seconds = int(now - entered) if isinstance(entered, (int, float)) else 0
        schedd = str(ad.get("GlobalJobId", "")).split("#")[0]
        facts = {key: ad[key] for key in FACTS if key in ad}
        rows[job_id] = QueueRow(job_id, state, _reason(ad, state), started, max(seconds, 0), schedd, facts)
    return rows


def format_seconds(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class ScheddClient:
    """The schedd the jobs are submitted to: ``name`` when given ([htcondor] schedd, e.g.
    one of lxplus's), else the one the HTCondor configuration makes the default."""

    def __init__(self, name: str | None = None):
        self.name = name
        self._schedd = None

    @property
    def schedd(self):
        if self._schedd is None:
            try:
                if self.name:
                    ad = htcondor.Collector().locate(htcondor.DaemonType.Schedd, self.name)
                    if ad is None:  # htcondor2 answers None for a name the collector does not know
                        raise UserError(f"timerc [htcondor] schedd = {self.name!r}: the collector knows no "
                                        f"such schedd; 'condor_status -schedd' lists them")
                    self._schedd = htcondor.Schedd(ad)
                else:
                    self._schedd = htcondor.Schedd()
            except UserError:
                raise
            except Exception as exc:  # the bindings raise HTCondorException / RuntimeError / ValueError
                which = f"schedd {self.name!r}" if self.name else "the HTCondor schedd"
                raise UserError(f"cannot reach {which} through the Python bindings: {exc}; "
                                f"is this a submit node (condor_q works)?") from None
        return self._schedd

    def locate(self) -> None:
        """UserError now unless the schedd can be found."""
        self.schedd

    @property
    def name_option(self) -> list[str]:
        return ["-name", self.name] if self.name else []

    def query(self, job_ids: list[str], now: float) -> dict[str, QueueRow]:
        """The jobs in the queue, and those that left it (from the schedd's history)."""
        if not job_ids:
            return {}
        constraint = job_constraint(job_ids)
        rows = rows_from_ads(self.schedd.query(constraint=constraint, projection=PROJECTION), now)
        gone = [j for j in job_ids if j not in rows]
        if gone:
            try:
                ads = self.schedd.history(job_constraint(gone), PROJECTION, match=len(gone))
            except Exception:  # history off or unreadable: the job just "left the queue"
                ads = []
            rows.update({j: r for j, r in rows_from_ads(ads, now).items() if j in gone})
        return rows

    def _run(self, command: str, job_ids: list[str], reason: str) -> None:
        argv = [command, *self.name_option, "-reason", reason, *job_ids]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise UserError(f"{command} did not answer within 60 s: is the schedd up (condor_q)?") from None
        if done.returncode != 0:
            words = "; ".join(ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip())
            raise UserError(f"{command} {' '.join(job_ids)} failed: {words}")

    def remove(self, job_ids: list[str], reason: str) -> None:
        self._run("condor_rm", job_ids, reason)

    def release(self, job_ids: list[str], reason: str) -> None:
        self._run("condor_release", job_ids, reason)
