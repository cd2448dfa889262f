"""Executing a production's tasks: the engine (submit, collect, retry on Dask), one task's
atomic execution on a worker, the step server that forks warm steps, provenance, the
production lock, TLS for every cluster and the ``cmsRun`` probe.

May import: contract, config, plan, ledger, views.
"""
