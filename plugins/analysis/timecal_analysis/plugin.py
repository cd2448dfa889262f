"""What the analysis plugin registers, through the ``timecal`` entry-point group like any
third-party plugin: the aggregators run at the end of a production and the evaluators of
runCalibration. Imports are deferred so that listing plugins stays cheap."""

from __future__ import annotations

from timecal_core.hookspecs import hookimpl


@hookimpl
def timecal_aggregators():
    from .observables import observables_aggregator
    from .summary import summary_aggregator

    yield summary_aggregator()
    yield observables_aggregator()


@hookimpl
def timecal_evaluators():
    from .evaluators import builtin_methods

    yield from builtin_methods()
