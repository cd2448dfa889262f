"""The core's own registrations (aggregators, evaluators), loaded through the same
entry-point group as third-party plugins so that ``BXRun --plugins`` lists them alike."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def timecal_aggregators():
    from .analysis.observables import observables_aggregator
    from .summary import summary_aggregator

    yield summary_aggregator()
    yield observables_aggregator()


@hookimpl
def timecal_evaluators():
    from .analysis.evaluators import builtin_methods

    yield from builtin_methods()
