"""The driver of one production: its heartbeat loop (reconcile, run, end with aggregation
or a list of failures), what it publishes while it runs (the control endpoint and its record,
``OUT/status.html``, mail), its log, and the aggregators at the end.

May import: contract, config, plan, ledger, views, run, control.
"""
