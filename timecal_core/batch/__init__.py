"""Dask workers in batch-system jobs, supervised: what the SLURM and HTCondor backend
plugins share (the timerc keys both understand, job states, lost and held jobs replaced).
The core itself does not use it; backends import it.

May import: contract, config, run.
"""

from .._aliases import module_getattr as _module_getattr

#: ``timecal_core.batch`` was a module: its names still resolve, with a DeprecationWarning
__getattr__ = _module_getattr(__name__)
