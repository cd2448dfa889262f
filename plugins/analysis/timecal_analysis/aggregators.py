"""The aggregators this plugin registers, as small records whose ``run`` imports its module
when it runs: the registry is built in every driver, and importing pandas and pyarrow there
for registrations alone cost a 30,000-task driver ~100 MB of its peak."""

from __future__ import annotations

from importlib import import_module

from timecal_core.contract.hookspecs import Aggregator


def _deferred(module: str, function: str):
    def run(request):
        return getattr(import_module(f"{__package__}.{module}"), function)(request)
    run.__qualname__ = run.__name__ = function
    return run


SUMMARY = Aggregator(name="summary", run=_deferred("summary", "write_summary"),
                     description="results/summary.parquet: parameters, output, runtime, "
                                 "attempts of every task")
OBSERVABLES = Aggregator(name="observables", run=_deferred("observables", "aggregate"),
                         description="scan observables per file, mode and delay -> [paths] "
                                     "scans/<production>/observables.parquet (+ tasks.parquet; its path "
                                     "under [paths] production)")
