"""The htcondor backend without an HTCondor pool.

HTCondor daemons (schedd, collector, startd) cannot be installed on these machines, so no
job really runs here and HTCondor end-to-end is not exercised in CI. What is real: the
submit description dask-jobqueue's ``HTCondorCluster`` generates, parsed by the HTCondor
bindings' own ``htcondor2.Submit``; job ClassAds built and constraints evaluated by the
real ``classad2`` module; the backend's dask-jobqueue cluster and its submission path.
Stand-ins: ``condor_submit``/``condor_rm`` scripts that record what they are given, and a
schedd object answering ``query``/``act`` from a list of ClassAds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import classad2
import htcondor2
import pytest
from dask.utils import parse_bytes

from timecal_backend_htcondor import schedd as schedd_module
from timecal_backend_htcondor.plugin import start, submit_description
from timecal_backend_htcondor.settings import parse_settings
from timecal_core.errors import UserError
from timecal_core.hookspecs import BackendRequest
from timecal_core.plugins import get_registry

SUBMIT_STANDIN = """#!{python}
# condor_submit stand-in: keeps the submit file, answers like condor_submit
import pathlib, shutil, sys
spool = pathlib.Path({spool!r}); spool.mkdir(exist_ok=True)
n = len(list(spool.glob("*.sub"))) + 1
shutil.copy(sys.argv[-1], spool / f"{{n}}.sub")
print("Submitting job(s).\\n1 job(s) submitted to cluster %d." % n)
"""
RM_STANDIN = """#!/bin/sh
echo "$@" >> {spool}/removed
echo "All jobs in cluster $1 have been marked for removal"
"""


class ScheddStandIn:
    """Answers like ``htcondor2.Schedd``: ``query`` evaluates the constraint on each ClassAd
    with the real classad2 evaluator; ``act`` records the action."""

    def __init__(self):
        self.ads: list[classad2.ClassAd] = []
        self.actions: list[tuple[str, list[str], str]] = []

    def query(self, constraint="true", projection=()):
        expr = classad2.ExprTree(constraint)
        return [ad for ad in self.ads if expr.eval(ad) is True]

    def act(self, action, job_spec, reason=None):
        self.actions.append((action.name, list(job_spec), reason))


def job_ad(job_id: str, status: int, **extra) -> classad2.ClassAd:
    cluster, proc = job_id.split(".")
    return classad2.ClassAd({"ClusterId": int(cluster), "ProcId": int(proc), "JobStatus": status,
                             "EnteredCurrentStatus": int(time.time()) - 30, **extra})


@pytest.fixture
def condor(tmp_path, monkeypatch):
    """Stand-in condor_submit/condor_rm first on PATH and a stand-in schedd."""
    bindir, spool = tmp_path / "condor-bin", tmp_path / "spool"
    bindir.mkdir()
    (bindir / "condor_submit").write_text(SUBMIT_STANDIN.format(python=sys.executable, spool=str(spool)))
    (bindir / "condor_rm").write_text(RM_STANDIN.format(spool=spool))
    for f in bindir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    schedd = ScheddStandIn()
    monkeypatch.setattr(schedd_module.htcondor, "Schedd", lambda: schedd)
    schedd.spool = spool
    return schedd


def wait_until(condition, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def submitted(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.sub"), key=lambda p: int(p.stem)) if spool.is_dir() else []


def test_registered_through_entry_point():
    reg = get_registry().backend("htcondor")
    assert reg.distribution == "timecal-backend-htcondor" and reg.item.start is start


def test_submit_description_parsed_by_htcondor(tmp_path):
    from dask_jobqueue import HTCondorCluster

    settings = parse_settings({
        "cores": "2", "memory": "4GB", "disk": "5GB",
        "submit_directives": '+JobFlavour = "workday"\n+MaxRuntime = 7200\n'
                             'requirements = (OpSysAndVer =?= "AlmaLinux9")',
        "prologue": "source /cvmfs/cms.cern.ch/cmsset_default.sh\ncd /afs/cmssw/src && eval `scramv1 runtime -sh`",
    }, tmp_path / "prod")
    with HTCondorCluster(**settings.cluster_kwargs) as cluster:
        sub = submit_description(cluster)
    keys = {k.lower(): v for k, v in dict(sub).items()}
    assert keys["my.jobflavour"] == '"workday"' and keys["my.maxruntime"] == "7200"
    assert keys["requirements"] == '(OpSysAndVer =?= "AlmaLinux9")'
    assert keys["my.daskworkercores"] == "2"
    assert int(keys["my.daskworkermemory"]) == 4 * 10**9 and int(keys["my.daskworkerdisk"]) == 5 * 10**9
    assert keys["requestcpus"] == "MY.DaskWorkerCores"
    assert keys["logdirectory"] == str(tmp_path / "prod" / "logs")
    assert keys["output"].startswith("$(LogDirectory)/worker-")
    args = keys["arguments"]
    assert args.index("cmsset_default.sh") < args.index("scramv1") < args.index("distributed.cli.dask_worker")
    assert parse_bytes("4GB") == 4 * 10**9  # the unit convention the request above relies on


def test_bad_submit_directive_is_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"\[htcondor\] submit_directives: '\+JobFlavour' is not 'key = value'"):
        parse_settings({"submit_directives": "+JobFlavour"}, tmp_path)


def test_missing_condor_submit(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"'condor_submit' not found: the htcondor backend needs the "
                                        r"HTCondor client commands \(condor_submit, condor_rm\) on PATH"):
        start(BackendRequest(settings={}, output_dir=tmp_path / "prod"))


def test_job_states_from_classads():
    text = ('[ ClusterId = 7; ProcId = 0; JobStatus = 5; EnteredCurrentStatus = 1000; '
            'HoldReason = "Error from slot1@node: Job has gone over memory limit of 2048 megabytes."; ]')
    rows = schedd_module.rows_from_ads([classad2.parseOne(text), job_ad("8.0", 1), job_ad("9.0", 2,
                                        JobCurrentStartDate=1500)], now=1090)
    assert rows["7.0"].state == "held" and "gone over memory limit" in rows["7.0"].reason
    assert rows["7.0"].seconds == 90
    assert rows["8.0"].state == "idle" and rows["8.0"].reason == ""
    assert rows["9.0"].state == "running" and rows["9.0"].started == 1500
    ads = [job_ad("7.0", 1), job_ad("7.1", 1), job_ad("8.0", 1)]
    expr = classad2.ExprTree(schedd_module.job_constraint(["7.1", "8.0"]))
    assert [f"{a['ClusterId']}.{a['ProcId']}" for a in ads if expr.eval(a) is True] == ["7.1", "8.0"]


def test_held_job_reported_removed_and_replaced(condor, tmp_path):
    running = start(BackendRequest(settings={"jobs": "2", "memory": "1GB"}, output_dir=tmp_path / "prod"))
    try:
        wait_until(lambda: len(running._live_jobs()) == 2)
        subs = submitted(condor.spool)
        assert len(subs) == 2
        assert dict(htcondor2.Submit(subs[0].read_text()))["MY.DaskWorkerMemory"] == str(10**9)
        reason = "Error from slot1@node: Job has gone over memory limit of 953 megabytes."
        condor.ads = [job_ad("1.0", 5, HoldReason=reason), job_ad("2.0", 1)]
        rows = {r.job_id: r for r in running.batch_jobs()}
        assert (rows["1.0"].state, rows["1.0"].reason) == ("held", reason)
        assert rows["2.0"].state == "idle"
        notices = running.supervise()
        assert notices == [f"htcondor job 1.0 ({running._job_names['1.0']}) is held: {reason}; "
                           f"removed, replaced (1/10)"]
        assert condor.actions[0][:2] == ("Remove", ["1.0"])
        wait_until(lambda: len(submitted(condor.spool)) == 3)  # the replacement job
        wait_until(lambda: "3.0" in running._live_jobs().values())
        condor.ads = [job_ad("1.0", 3), job_ad("2.0", 1), job_ad("3.0", 1)]
        assert running.supervise() == []  # the held job was reported once; the others queue
    finally:
        running.close()


def test_past_the_limit_held_jobs_wait_for_release_or_remove(condor, tmp_path):
    running = start(BackendRequest(settings={"jobs": "1", "max_replacements": "0"},
                                   output_dir=tmp_path / "prod"))
    try:
        wait_until(lambda: running._live_jobs())
        condor.ads = [job_ad("1.0", 5, HoldReason="SYSTEM_PERIODIC_HOLD")]
        (notice,) = running.supervise()
        assert "is held: SYSTEM_PERIODIC_HOLD; left held" in notice and "'release 1.0'" in notice
        assert condor.actions == []
        release, _ = running.commands["release"]
        assert release("1.0") == "released 1 job(s): 1.0"
        assert condor.actions[-1][:2] == ("Release", ["1.0"])
        remove, _ = running.commands["remove"]
        assert remove("all").startswith("removed 1 job(s): 1.0")
        assert condor.actions[-1][:2] == ("Remove", ["1.0"])
        with pytest.raises(UserError, match="99.0 not a job of this production; its jobs: 1.0"):
            release("99.0")
    finally:
        running.close()


def test_job_leaving_queue_before_worker_connects_is_replaced(condor, tmp_path):
    running = start(BackendRequest(settings={"jobs": "1"}, output_dir=tmp_path / "prod"))
    try:
        wait_until(lambda: running._live_jobs())
        condor.ads = []  # e.g. the job's shell exited at once: it is gone from the queue
        (tmp_path / "prod" / "logs" / "worker-1.0.err").write_text("sh: cmsenv: command not found\n")
        (notice,) = running.supervise()
        assert "htcondor job 1.0" in notice
        assert "left the queue before its Dask worker connected: sh: cmsenv: command not found;" in notice
        assert "replaced (1/10)" in notice and "worker-1.0.err" in notice
        wait_until(lambda: len(submitted(condor.spool)) == 2)
    finally:
        running.close()


def test_running_job_whose_worker_never_connects(condor, tmp_path):
    running = start(BackendRequest(settings={"jobs": "1", "connect_timeout": "60",
                                             "contact_address": "tls://lxplus999.cern.ch:8786"},
                                   output_dir=tmp_path / "prod"))
    try:
        wait_until(lambda: running._live_jobs())
        now = int(time.time())
        condor.ads = [job_ad("1.0", 2, EnteredCurrentStatus=now - 30, JobCurrentStartDate=now - 30)]
        assert running.supervise() == []  # within connect_timeout: still starting
        condor.ads = [job_ad("1.0", 2, EnteredCurrentStatus=now - 90, JobCurrentStartDate=now - 90)]
        (notice,) = running.supervise()
        assert "htcondor job 1.0" in notice and "never reached the scheduler at tls://lxplus999.cern.ch:8786 (advertised from [htcondor] contact_address)" in notice
        assert "removed, replaced (1/10)" in notice
        assert condor.actions[-1][:2] == ("Remove", ["1.0"])
        wait_until(lambda: len(submitted(condor.spool)) == 2)
    finally:
        running.close()
