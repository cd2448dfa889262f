"""The htcondor backend's reading of timerc [htcondor] and of job ClassAds, without a pool
(they run everywhere; test_htcondor_pool.py runs jobs on a real HTCondor pool, as root).

What is real: the submit description dask-jobqueue's ``HTCondorCluster`` generates, parsed
by the HTCondor bindings' own ``htcondor2.Submit``; job ClassAds built and constraints
evaluated by the real ``classad2`` module.
"""

from __future__ import annotations

import time

import classad2
import pytest
from dask.utils import parse_bytes

from timecal_backend_htcondor import schedd as schedd_module
from timecal_backend_htcondor.plugin import start, submit_description
from timecal_backend_htcondor.settings import parse_settings
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest
from timecal_core.contract.plugins import get_registry

def job_ad(job_id: str, status: int, **extra) -> classad2.ClassAd:
    cluster, proc = job_id.split(".")
    return classad2.ClassAd({"ClusterId": int(cluster), "ProcId": int(proc), "JobStatus": status,
                             "EnteredCurrentStatus": int(time.time()) - 30, **extra})


def test_registered_through_entry_point():
    reg = get_registry().backend("htcondor")
    assert reg.distribution == "timecal-backend-htcondor" and reg.item.start is start


def test_loading_the_plugins_does_not_import_the_htcondor_bindings():
    """Every process that loads the plugins imports them, each Dask worker with its first task
    included; importing the bindings resolves the host's name, which on a compute node whose
    name does not resolve retries for about two minutes (seen on the multi-node test cluster,
    tests/slurmnet: every SLURM task waited for HTCondor). They come with the backend's start."""
    import subprocess
    import sys

    code = ("import sys; from timecal_core.contract.plugins import get_registry; get_registry(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('htcondor', 'htcondor2', 'classad2')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


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
                                        r"HTCondor client commands \(condor_submit, condor_rm, condor_release\) on PATH"):
        start(BackendRequest(settings={}, output_dir=tmp_path / "prod"))


def test_job_states_from_classads():
    text = ('[ ClusterId = 7; ProcId = 0; JobStatus = 5; EnteredCurrentStatus = 1000; '
            'HoldReason = "Error from slot1@node: Job has gone over memory limit of 2048 megabytes."; ]')
    rows = schedd_module.rows_from_ads([classad2.parseOne(text), job_ad("8.0", 1), job_ad("9.0", 2,
                                        JobCurrentStartDate=1500, GlobalJobId="bigbird17.cern.ch#9.0#1500"),
                                        job_ad("10.0", 4, ExitCode=127)], now=1090)
    assert rows["7.0"].state == "held" and "gone over memory limit" in rows["7.0"].reason
    assert rows["7.0"].seconds == 90
    assert rows["8.0"].state == "idle" and rows["8.0"].reason == ""
    assert rows["9.0"].state == "running" and rows["9.0"].started == 1500
    assert rows["9.0"].schedd == "bigbird17.cern.ch"  # where to find the job again (lxplus)
    assert (rows["10.0"].state, rows["10.0"].reason) == ("completed", "exit code 127")
    ads = [job_ad("7.0", 1), job_ad("7.1", 1), job_ad("8.0", 1)]
    expr = classad2.ExprTree(schedd_module.job_constraint(["7.1", "8.0"]))
    assert [f"{a['ClusterId']}.{a['ProcId']}" for a in ads if expr.eval(a) is True] == ["7.1", "8.0"]


def test_schedd_setting_submits_and_removes_there(tmp_path):
    """lxplus has a schedd per login node: [htcondor] schedd pins the one to use."""
    settings = parse_settings({"schedd": "bigbird17.cern.ch"}, tmp_path)
    assert settings.cluster_kwargs["submit_command_extra"] == ["-name", "bigbird17.cern.ch"]
    assert settings.cluster_kwargs["cancel_command_extra"] == ["-name", "bigbird17.cern.ch"]
    assert settings.own["schedd"] == "bigbird17.cern.ch"


PERIODIC_HOLD = "The job attribute PeriodicHold expression '{}' evaluated to TRUE"
PERIODIC_REMOVE = "The job attribute PeriodicRemove expression '{}' evaluated to TRUE"
CAUSE_CASES = {  # job ad attributes -> cause
    "memory hold (cgroup)": (5, {"HoldReasonCode": 34, "HoldReasonSubCode": 0, "HoldReason":
                                 "Error from slot1@node: Job has gone over cgroup memory limit of 2048 "
                                 "megabytes. Peak usage: 2300 megabytes."}, "oom"),
    "allowed_execute_duration": (5, {"HoldReasonCode": 47, "HoldReason":
                                     "The job exceeded allowed execute duration of 0+01:00:00"}, "walltime"),
    "allowed_job_duration": (5, {"HoldReasonCode": 46, "HoldReason":
                                 "The job exceeded allowed job duration of 0+02:00:00"}, "walltime"),
    "periodic_hold on run time": (5, {"HoldReasonCode": 3, "HoldReason": PERIODIC_HOLD.format(
        "(time() - JobCurrentStartDate) > 3600")}, "walltime"),
    "site hold on MaxRuntime": (5, {"HoldReasonCode": 26, "HoldReason":
                                    "The system macro SYSTEM_PERIODIC_HOLD expression "
                                    "'RemoteWallClockTime > MaxRuntime' evaluated to TRUE"}, "walltime"),
    "site hold on memory": (5, {"HoldReasonCode": 26, "HoldReason": "Error from slot1@node17.cern.ch: "
                                "Memory usage exceeded request (MemoryUsage > RequestMemory)"}, "oom"),
    "periodic_hold on restarts": (5, {"HoldReasonCode": 3, "HoldReason": PERIODIC_HOLD.format("NumJobStarts > 3")},
                                  None),
    "output stream": (5, {"HoldReasonCode": 13, "HoldReason":
                          "Error from slot1@node: unable to establish standard output stream"}, None),
    "condor_hold": (5, {"HoldReasonCode": 1, "HoldReason": "via condor_hold (by user tester)"}, None),
    "periodic_remove on run time": (3, {"RemoveReason": PERIODIC_REMOVE.format(
        "(time() - JobCurrentStartDate) > 60")}, "walltime"),
    "site remove on MaxRuntime": (3, {"RemoveReason": "The system macro SYSTEM_PERIODIC_REMOVE expression "
                                                      "'(JobStatus == 2) && (time() - JobCurrentStartDate > "
                                                      "MaxRuntime)' evaluated to TRUE"}, "walltime"),
    "condor_rm": (3, {"RemoveReason": "via condor_rm (by user tester)"}, None),
    "condor_rm of a memory-held job": (3, {"LastHoldReasonCode": 34, "LastHoldReason": "Job has gone over cgroup "
                                           "memory limit", "RemoveReason": "via condor_rm (by user tester)"}, "oom"),
    "hold released, then condor_rm": (3, {"LastHoldReasonCode": 34, "LastHoldReason": "over memory",
                                          "ReleaseReason": "via condor_release (by user tester)",
                                          "RemoveReason": "via condor_rm (by user tester)"}, None),
    "worker exited": (4, {"ExitCode": 1}, None),
    "running": (2, {"JobCurrentStartDate": 1000}, None),
}


@pytest.mark.parametrize("case", CAUSE_CASES)
def test_holds_and_removals_for_memory_or_run_time_are_failure_causes(case):
    """What a lost worker's job ClassAd says, as a failure cause (the schedd's real
    attributes through the real classad2 module): codes 34/46/47 by number, policies
    (code 3, 26, PeriodicRemove) by what their expression tests; anything else adds nothing.
    The words recorded name no job, slot or duration: ``errors`` groups identical words."""
    from timecal_backend_htcondor.cluster import cause_of_job

    status, attributes, expected = CAUSE_CASES[case]
    (row,) = schedd_module.rows_from_ads([job_ad("45.0", status, **attributes)], now=time.time()).values()
    fate = cause_of_job(row.state, row.facts)
    assert (fate[0] if fate else None) == expected, fate
    if not fate:
        return
    assert "45.0" not in fate[1] and "slot1@" not in fate[1] and "\n" not in fate[1], fate
    code = attributes.get("HoldReasonCode", attributes.get("LastHoldReasonCode"))
    if code == 34:
        assert fate[1] == "HTCondor held the job: over its memory request (code 34): raise [htcondor] memory"
    elif code in (46, 47):
        assert fate[1].startswith("HTCondor held the job: its allowed_") and \
            fate[1].endswith(f"_duration was exceeded (code {code})"), fate
    elif code:  # HTCondor's words, without the slot that wrote them
        assert fate[1] == f"HTCondor held the job: {attributes['HoldReason'].split(': ', 1)[-1]} (code {code})", fate
    else:
        assert fate[1] == f"HTCondor removed the job: {attributes['RemoveReason']}", fate


def test_the_lxplus_settings_of_dask_lxplus_reach_the_submit_description(tmp_path):
    """What CERN's dask-lxplus (cernops/dask-lxplus, cluster.py) adds to every worker job, as
    timecal's own settings say it (docs/howto/htcondor.md, on lxplus): the credential, container,
    flavour and marker lines through submit_directives, the workers' port range through the
    user's jobqueue.yaml (timecal leaves worker_extra_args to it). Parsed by htcondor2.Submit
    from the arguments timecal really gives HTCondorCluster (TLS included)."""
    import dask
    from dask_jobqueue import HTCondorCluster

    from timecal_core.batch.supervision import job_cluster_kwargs

    image = "/cvmfs/unpacked.cern.ch/gitlab-registry.cern.ch/batch-team/dask-lxplus/lxdask-al9:latest"
    raw = {"memory": "3GB", "disk": "20GB", "dashboard": "no",
           "submit_directives": f'MY.SendCredential = True\nMY.SingularityImage = "{image}"\n'
                                'MY.JobFlavour = "longlunch"\nMY.IsDaskWorker = true\n'
                                'JobBatchName = "timecal"\nMY.SpoolOnEvict = False'}
    ports = ["--worker-port", "10000:10100", "--nanny-port", "10000:10100"]
    with dask.config.set({"jobqueue.htcondor.worker-extra-args": ports}):
        settings = parse_settings({k: v for k, v in raw.items() if k != "dashboard"}, tmp_path / "prod")
        with HTCondorCluster(**job_cluster_kwargs(settings, raw, tmp_path / "prod")) as cluster:
            sub = submit_description(cluster)
    keys = {k.lower(): v for k, v in dict(sub).items()}
    assert keys["my.sendcredential"] == "True" and keys["my.singularityimage"] == f'"{image}"'
    assert keys["my.jobflavour"] == '"longlunch"' and keys["my.isdaskworker"] == "true"
    assert keys["jobbatchname"] == '"timecal"' and keys["my.spoolonevict"] == "False"
    assert "--worker-port 10000:10100 --nanny-port 10000:10100" in keys["arguments"]
    assert "--tls-ca-file" in keys["arguments"]  # and the workers still speak TLS only
