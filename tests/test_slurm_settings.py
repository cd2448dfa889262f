"""The slurm backend's reading of timerc [slurm] and of squeue, without a cluster."""

from __future__ import annotations


import dask
import pytest

from conftest import write_timerc
from timecal_backend_slurm import slurmcli
from timecal_backend_slurm.plugin import start
from timecal_backend_slurm.settings import parse_settings
from timecal_core.batch.settings import scratch_lines
from timecal_core.config.timerc import load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import BackendRequest
from timecal_core.contract.plugins import get_registry


def test_registered_through_entry_point():
    reg = get_registry().backend("slurm")
    assert reg.distribution == "timecal-backend-slurm"
    assert reg.item.start is start


def test_timerc_section_becomes_cluster_arguments(tmp_path):
    extra = ("[slurm]\npartition = cp3\naccount = cms\ncores = 4\nprocesses = 2\nmemory = 8GB\n"
             "walltime = 02:00:00\njob_extra_directives =\n    --qos=normal\n    --exclusive\n"
             "prologue =\n    source /cvmfs/cms.cern.ch/cmsset_default.sh\n    cd /cmssw && eval `scramv1 runtime -sh`\n"
             "adapt_min = 2\nadapt_max = 50\n")
    section = load_timerc(write_timerc(tmp_path, extra)).section("slurm")
    s = parse_settings(section, tmp_path / "prod")
    kw = s.cluster_kwargs
    assert (kw["queue"], kw["account"], kw["cores"], kw["processes"], kw["memory"], kw["walltime"]) == \
        ("cp3", "cms", 4, 2, "8GB", "02:00:00")
    assert kw["job_extra_directives"] == ["--qos=normal", "--exclusive", "--no-requeue"]
    assert kw["job_script_prologue"][:2] == ["source /cvmfs/cms.cern.ch/cmsset_default.sh",
                                             "cd /cmssw && eval `scramv1 runtime -sh`"]
    assert kw["job_script_prologue"][2:] == scratch_lines("slurm", "")  # then the worker's scratch
    assert kw["log_directory"] == str(tmp_path / "prod" / "logs")
    assert s.adapt == (2, 50) and s.jobs is None


def test_job_script_carries_the_settings(tmp_path):
    """The real SLURMCluster renders the #SBATCH header and prologue (no cluster needed)."""
    from dask_jobqueue import SLURMCluster

    s = parse_settings({"partition": "cp3", "memory": "1GB", "walltime": "00:30:00",
                        "job_extra_directives": "--qos=short", "prologue": "echo set-up-done"},
                       tmp_path / "prod")
    with SLURMCluster(**s.cluster_kwargs) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p cp3" in script and "#SBATCH -t 00:30:00" in script
    assert "#SBATCH --qos=short" in script
    assert f"#SBATCH -o {tmp_path / 'prod' / 'logs'}/timecal-%J.out" in script
    assert script.index("echo set-up-done") < script.index("distributed.cli.dask_worker")


def test_worker_jobs_are_not_requeued_unless_asked(tmp_path):
    """A job lost with its node is replaced by timecal and its tasks rerun by Dask: SLURM's
    own requeue (JobRequeue=1, a site default) would bring it back under the same id, so the
    jobs say --no-requeue, after the user's directives from timerc or else jobqueue.yaml; a
    user who writes --requeue keeps it."""
    assert parse_settings({}, tmp_path).cluster_kwargs["job_extra_directives"] == ["--no-requeue"]
    s = parse_settings({"job_extra_directives": "--requeue\n--qos=long"}, tmp_path)
    assert s.cluster_kwargs["job_extra_directives"] == ["--requeue", "--qos=long"]
    with dask.config.set({"jobqueue.slurm.job-extra-directives": ["--qos=fromyaml"]}):
        s = parse_settings({}, tmp_path)
    assert s.cluster_kwargs["job_extra_directives"] == ["--qos=fromyaml", "--no-requeue"]


def test_jobqueue_yaml_fills_what_timerc_leaves_out(tmp_path):
    """Users with a working ~/.config/dask/jobqueue.yaml keep it: keys absent from [slurm]
    come from dask's config, keys present in [slurm] win."""
    from dask_jobqueue import SLURMCluster

    with dask.config.set({"jobqueue.slurm.walltime": "01:23:00", "jobqueue.slurm.memory": "3GB",
                          "jobqueue.slurm.account": "fromyaml"}):
        s = parse_settings({"account": "fromtimerc"}, tmp_path)
        assert s.cluster_kwargs["memory"] == "3GB"
        with SLURMCluster(**s.cluster_kwargs) as cluster:
            script = cluster.job_script()
    assert "#SBATCH -t 01:23:00" in script
    assert "#SBATCH -A fromtimerc" in script


@pytest.mark.parametrize("section, message", [
    ({"partiton": "x"}, "unknown setting partiton (did you mean partition?); allowed: partition, queue"),
    ({"cores": "two"}, "cores = 'two': expected a positive integer"),
    ({"memory": "lots"}, "memory = 'lots'"),
    ({"jobs": "3", "adapt_max": "5"}, "either jobs or adapt_min/adapt_max"),
    ({"adapt_min": "5", "adapt_max": "2"}, "adapt_min = 5 exceeds adapt_max = 2"),
    ({"cores": "2", "processes": "4"}, "processes = 4 exceeds cores = 2"),
    ({"interface": "nosuchif0"}, "interface = 'nosuchif0': no such network interface"),
    ({"contact_address": "login1"}, "expected tls://HOST:PORT"),
])
def test_bad_settings_are_one_line_errors(tmp_path, section, message):
    with pytest.raises(UserError) as err:
        parse_settings(section, tmp_path)
    assert message in str(err.value) and "[slurm]" in str(err.value)
    assert "\n" not in str(err.value)


def test_workers_interface_need_not_exist_on_the_login_node(tmp_path):
    """A multi-homed login node: the nodes' interface (here nosuchif0) is the workers' only;
    the scheduler listens on scheduler_interface, or on the contact address's port on every
    interface. Only an interface the scheduler itself would listen on must exist here."""
    s = parse_settings({"interface": "nosuchif0", "scheduler_interface": "lo"}, tmp_path)
    assert s.cluster_kwargs["interface"] == "nosuchif0"
    assert s.cluster_kwargs["scheduler_options"]["interface"] == "lo"
    s = parse_settings({"interface": "nosuchif0", "contact_address": "tls://login1.example.org:8786"}, tmp_path)
    options = s.cluster_kwargs["scheduler_options"]
    assert (options["contact_address"], options["port"], options["host"]) == \
        ("tls://login1.example.org:8786", 8786, "0.0.0.0")
    with pytest.raises(UserError, match=r"interface = 'nosuchif0': no such network interface on this host "
                                        r"\(the scheduler listens on it too unless scheduler_interface"):
        parse_settings({"interface": "nosuchif0"}, tmp_path)
    with pytest.raises(UserError, match=r"scheduler_interface = 'nosuchif0': no such network interface"):
        parse_settings({"interface": "lo", "scheduler_interface": "nosuchif0"}, tmp_path)
    with pytest.raises(UserError, match=r"contact_address = 'tls://login1:http': expected tls://HOST:PORT"):
        parse_settings({"contact_address": "tls://login1:http"}, tmp_path)


def test_missing_sbatch_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without any SLURM command
    with pytest.raises(UserError, match=r"'sbatch' not found: the slurm backend needs the SLURM "
                                        r"client commands \(sbatch, squeue, scancel\) on PATH"):
        start(BackendRequest(settings={}, output_dir=tmp_path / "prod"))


def test_squeue_output_parsing():
    text = ("12|PENDING|Resources|0:00|N/A\n"
            "13|RUNNING|None|1-02:03:04|2026-11-24T17:00:00\n"
            "14|CANCELLED|None|0:07|2026-11-24T16:59:00\n")
    rows = slurmcli.parse_squeue(text)
    assert rows["12"].reason == "Resources" and rows["12"].started is None
    assert rows["13"].seconds == 86400 + 2 * 3600 + 3 * 60 + 4 and rows["13"].reason == ""
    assert rows["14"].state in slurmcli.ENDED and rows["14"].seconds == 7
    assert slurmcli.parse_elapsed("5:06") == 306 and slurmcli.parse_elapsed("INVALID") == 0
    (row,) = slurmcli.parse_squeue("15|TIMEOUT|TimeLimit|1:27|2026-11-24T16:59:00|1:00\n").values()
    assert (row.state, row.reason, row.elapsed, row.limit) == ("TIMEOUT", "TimeLimit", "1:27", "1:00")


def test_sacct_output_parsing():
    """sacct --parsable2 --allocations: whole jobs only; 'CANCELLED by 0' is state + reason."""
    text = ("21|OUT_OF_MEMORY|00:03:10|2026-11-24T16:59:00|01:00:00\n"
            "22|CANCELLED by 0|00:00:07|2026-11-24T16:59:00|01:00:00\n"
            "23|PENDING|00:00:00|Unknown|01:00:00\n")
    rows = slurmcli.parse_sacct(text)
    assert (rows["21"].state, rows["21"].seconds, rows["21"].limit) == ("OUT_OF_MEMORY", 190, "01:00:00")
    assert (rows["22"].state, rows["22"].reason) == ("CANCELLED", "by 0")
    assert rows["23"].started is None and rows["21"].started is not None


CAUSES = [  # squeue/sacct state, reason -> cause
    ("TIMEOUT", "TimeLimit", "walltime"),
    ("DEADLINE", "DeadLine", "walltime"),
    ("OUT_OF_MEMORY", "OutOfMemory", "oom"),
    ("COMPLETING", "OutOfMemory", "oom"),  # squeue while the job is still completing
    ("COMPLETING", "TimeLimit", "walltime"),
    ("NODE_FAIL", "NodeDown", "node"),
    ("BOOT_FAIL", "", "node"),
    ("PREEMPTED", "", "node"),
    ("CANCELLED", "", None),
    ("FAILED", "NonZeroExitCode", None),
    ("COMPLETED", "", None),
    ("COMPLETING", "", None),
    ("RUNNING", "", None),
]


@pytest.mark.parametrize("state, reason, cause", CAUSES)
def test_slurm_states_as_failure_causes(state, reason, cause):
    """The states (or, while COMPLETING, the reasons) that say why a job's worker died, as
    the failure causes the ledger records, in words without job id or duration (``errors``
    groups identical words); the other states add nothing to "worker lost"."""
    from timecal_backend_slurm.cluster import cause_of_row

    fate = cause_of_row(state, reason, "1:00:00")
    assert (fate[0] if fate else None) == cause, fate
    if cause == "walltime" and state != "DEADLINE":
        assert fate[1] == "the SLURM job reached its time limit of 1:00:00 (TIMEOUT): raise [slurm] walltime"
    elif cause == "oom":
        assert fate[1] == "the SLURM job ran out of memory (OUT_OF_MEMORY): raise [slurm] memory"
    elif cause:
        assert fate[1].startswith("the SLURM job") and fate[1].endswith(f"({state})"), fate
    assert cause_of_row("TIMEOUT", "TimeLimit", "UNLIMITED")[1] == \
        "the SLURM job reached its time limit (TIMEOUT): raise [slurm] walltime"


def test_batch_backends_use_only_public_dask_state():
    """The shared supervision (timecal_core/batch/) and both batch backends drop jobs with
    SpecCluster.scale_down and keep the Adaptive object adapt() returns, instead of reaching
    into dask-jobqueue/distributed private state (which upstream may change at any release), and
    read the scheduler's workers only on its event loop (a scheduler plugin), never from this thread."""
    from pathlib import Path

    import timecal_backend_htcondor
    import timecal_backend_slurm
    import timecal_core.batch

    sources = sorted(Path(timecal_core.batch.__file__).parent.glob("*.py"))
    for package in (timecal_backend_slurm, timecal_backend_htcondor):
        sources += sorted(Path(package.__file__).parent.glob("*.py"))
    for path in sources:
        text = path.read_text()
        for private in ("._adaptive", "worker_spec.pop", "workers.pop", "cluster.scheduler.workers"):
            assert private not in text, f"{path} uses {private}"
