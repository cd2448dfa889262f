"""How a production's state reads, for every screen: status lines and reports, failures
grouped and ranked by parameter, the grid as a text map, selections by parameter, the
HTML status page, and ``BXRun --status`` read from the ledger alone. Pure computation and
formatting over ledger rows: nothing here talks to Dask or writes the ledger.

May import: contract, config, ledger.
"""
