"""Before a CMSSW production is planned: does timerc's ``[cmssw] init`` give a ``cmsRun``?
One subprocess (bash running the trusted snippet), in the environment the steps get, once
instead of in every task."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..contract.errors import UserError


CMSRUN_CHECK_SECONDS = 120  # [cmssw] init may load modules from a network file system


def check_cmsrun(timerc) -> None:
    """For CMSSW scripts: does timerc's ``[cmssw] init`` give a ``cmsRun``? Checked once when
    planning, in the environment the steps get, instead of by every task."""
    from .tasks import clean_environment

    env = clean_environment(dict(os.environ))
    init = timerc.cmssw_init
    where = f"{timerc.path}: [cmssw] init"
    if not init:
        if shutil.which("cmsRun", path=env.get("PATH", "")) is None:
            raise UserError(f"{where} is empty and cmsRun is not on PATH; set [cmssw] init to the "
                            f"snippet that sets up CMSSW (e.g. cd CMSSW_X/src && eval `scramv1 runtime -sh`)")
        return
    try:
        proc = subprocess.run(["bash", "-c", f"{init}\ncommand -v cmsRun"], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=CMSRUN_CHECK_SECONDS)
    except subprocess.TimeoutExpired:
        raise UserError(f"{where} did not finish within {CMSRUN_CHECK_SECONDS} s (checked with "
                        f"'command -v cmsRun'); fix the snippet") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        raise UserError(f"{where} does not make cmsRun available ('command -v cmsRun' failed"
                        + (f": {last}" if last else "") + "); set it to the snippet that sets up CMSSW")
