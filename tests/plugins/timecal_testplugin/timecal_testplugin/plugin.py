"""Registers the ``sleeper`` production script."""

import sys

from timecal_core.contract.hookspecs import Parameter, ProductionScript, Step, TaskPlan, hookimpl
from timecal_core.config.parameters import as_argv

PARAMETERS = (
    Parameter("index", "int", 0, "any number, to make grids"),
    Parameter("seconds", "float", 0.0, "how long the task sleeps"),
    Parameter("exit_code", "int", 0, "exit code of the step (0 = success)"),
    Parameter("flaky", "str", "", "marker file: fail (exit 3) if it does not exist yet, creating it",
              in_dirname=False),
    Parameter("message", "str", "", "text written to the output and the log", in_dirname=False),
    Parameter("mode", "str", "sleep", "what to do", choices=("sleep", "spin")),
    Parameter("warm", "bool", False, "run the step warm (Step.python) instead of as a subprocess",
              in_dirname=False),
    Parameter("children", "int", 0, "processes the step starts in its group (each sleeps too)",
              in_dirname=False),
    Parameter("level", "int", 0, "a second number, to make two-dimensional grids"),
    Parameter("fail_index_min", "int", -1, "plant failures in a region of the grid: the step "
              "exits 4 where index >= this (and level >= fail_level_min); -1: never",
              in_dirname=False),
    Parameter("fail_level_min", "int", 0, "see fail_index_min", in_dirname=False),
    Parameter("allocate", "int", 0, "MiB the step fills in memory, held while it sleeps",
              in_dirname=False),
    Parameter("garbled", "bool", False, "write an output that verify() refuses", in_dirname=False),
)


def verify(output):
    """A sleeper's output is the repr of its parameters: a dict."""
    with open(output, "rb") as fh:
        head = fh.read(1)
    return None if head == b"{" else f"does not start with '{{' (starts with {head!r})"


def plan(request):
    if request.params.get("warm"):
        return TaskPlan(steps=(Step("sleep", tuple(as_argv(request.params)),
                                    python="timecal_testplugin.sleep:main"),), output="out.txt")
    return TaskPlan(
        steps=(Step("sleep", (sys.executable, "-m", "timecal_testplugin.sleep",
                              *as_argv(request.params))),),
        output="out.txt",
    )


@hookimpl
def timecal_scripts():
    yield ProductionScript(name="sleeper", parameters=PARAMETERS, plan=plan, verify=verify,
                           aliases=("Sleeper_cfg.py",), description="sleeps, fails or flakes on demand")


#: In a production of ``sleeper`` tasks, this file under results/ makes the aggregator below
#: kill its own process: how a test meets an aggregation that dies (out of memory, a crash).
DIE_MARKER = ".die-in-aggregation"


def _where_aggregated(request):
    """Records which process ran the aggregators (they run in one of their own)."""
    import json
    import os
    import signal

    if request.script != "sleeper":
        return []
    results = request.production_dir / "results"
    if (results / DIE_MARKER).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    out = results / "aggregated.json"
    out.write_text(json.dumps({"pid": os.getpid(), "tasks": sum(1 for _ in request.tasks)}))
    return [out]


@hookimpl
def timecal_aggregators():
    from timecal_core.contract.hookspecs import Aggregator

    yield Aggregator("where", _where_aggregated, description="which process aggregated (tests)")
