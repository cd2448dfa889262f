"""What users type and configure: the ``timerc`` file, YAML grids with ``!include`` and
``{placeholders}``, parameter values made canonical (``5000`` = ``5000.0``), and the table of
a script's parameters (``BXRun --script NAME -h``).

May import: contract.
"""

from .._aliases import module_getattr as _module_getattr

#: ``timecal_core.config`` was a module: its names still resolve, with a DeprecationWarning
__getattr__ = _module_getattr(__name__)
