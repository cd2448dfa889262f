"""Planning a scan before anything runs: a YAML grid becomes tasks with stable ids and
directories, which of them are already done on disk (the one rule of completion), and the
pilot's cost model (``BXRun --pilot``: a few tasks measured, the whole grid extrapolated).

May import: contract, config.
"""
