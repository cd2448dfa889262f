"""What the analysis plugin registers, through the ``timecal`` entry-point group like any
third-party plugin: the aggregators run at the end of a production and the evaluators of
runCalibration. Imports are deferred so that listing plugins stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cmd2

from timecal_core.contract.hookspecs import ShellCommands, hookimpl


@hookimpl
def timecal_aggregators():
    from .aggregators import OBSERVABLES, SUMMARY

    yield SUMMARY
    yield OBSERVABLES


@hookimpl
def timecal_evaluators():
    from .evaluators import builtin_methods

    yield from builtin_methods()


class AnalysisCommands(cmd2.CommandSet):
    """plotScan and runCalibration from the home shell, run as the commands themselves."""

    DEFAULT_CATEGORY = "Analysis"

    @staticmethod
    def _run(name: str, args: list[str]) -> None:
        subprocess.run([str(Path(sys.executable).with_name(name)), *args])

    def do_plot(self, statement) -> None:
        """Scan plots of a production: the options of plotScan (plot -i scan1 [-o NAME] ...)."""
        self._run("plotScan", statement.arg_list)

    def do_calibrate(self, statement) -> None:
        """Delay calibration: the options of runCalibration (calibrate scenarios.yml ...)."""
        self._run("runCalibration", statement.arg_list)


@hookimpl
def timecal_commands():
    yield ShellCommands("analysis", AnalysisCommands, "plot (plotScan), calibrate (runCalibration)")
