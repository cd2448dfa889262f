"""The production ledger ``OUT/ledger.sqlite``, the driver's memory of every task: its plain
records (states, rows, events, failures), the SQLite store (all its SQL), and the vocabulary
of failure causes with the retry policy that the ledger applies.

May import: contract.
"""

from .._aliases import module_getattr as _module_getattr

#: ``timecal_core.ledger`` was a module: its names still resolve, with a DeprecationWarning
__getattr__ = _module_getattr(__name__)
