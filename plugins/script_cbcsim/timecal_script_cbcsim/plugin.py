"""Registers ``cbcsim``, the CMSSW-free emulator of the PUCalibration + Harvester chain.

One warm step (``Step(python="timecal_script_cbcsim.run:main")``: forked from the worker's
step server, which keeps numpy, uproot and this plugin imported and a sim-hit dump read
once per worker) writes the harvested file directly; ``python -m timecal_script_cbcsim
k=v...`` runs the same code cold. In
emulate mode with ``offset=-1`` the delay is drawn here, from ``seed``, so that the output
name is known when planning; the step gets it explicitly and it is recorded in the metadata.
"""

from __future__ import annotations

from timecal_core.cms.fast_root import GATE as FAST_WRITER
from timecal_core.cms.harvested_layout import COMPACT, FULL, harvested_name
from timecal_core.cms.root_check import root_file_problem
from timecal_core.contract.hookspecs import ProductionScript, Step, TaskPlan, TaskRequest, hookimpl
from timecal_core.config.parameters import as_argv

from .params import PARAMETERS, check, check_values, draw_delay

STEP_FUNCTION = "timecal_script_cbcsim.run:main"


def preflight(timerc) -> None:
    """Before anything is submitted: whether the harvested files are written by the fast
    writer, decided and (when not) said once, here in the driver, for the whole production."""
    FAST_WRITER.usable()


def plan(request: TaskRequest) -> TaskPlan:
    params = dict(request.params)
    check(params)
    metadata = {}
    delay = None
    if params["mode"] == "emulate":
        if params["offset"] < 0:
            params["offset"] = draw_delay(params["seed"])
            metadata["delay_drawn_from_seed"] = True
        delay = params["offset"]
        metadata["delay"] = delay
    return TaskPlan(
        steps=(Step("cbcsim", tuple(as_argv(params)), python=STEP_FUNCTION),),
        output=harvested_name(params, delay),
        metadata=metadata,
    )


#: What a harvested file of the emulator holds at its top (run.py writes them).
TOP_OBJECTS = ("DQMData", "cbcsim_info")


def verify(output) -> str | None:
    """A finished output is a complete ROOT file with the emulator's top-level objects: its
    header and key list are read (a few hundred bytes), not its histograms."""
    return root_file_problem(output, TOP_OBJECTS)


@hookimpl
def timecal_scripts():
    yield ProductionScript(name="cbcsim", parameters=PARAMETERS, plan=plan, check=check_values,
                           preflight=preflight, verify=verify,
                           description="CBC emulator (no CMSSW): synthetic hits or a sim-hit dump",
                           layouts=(FULL, COMPACT))
