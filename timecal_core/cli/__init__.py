"""The commands: ``BXRun`` (argument parsing and dispatch), ``timecal``, ``--status`` and
``--rebuild-ledger``, detaching a driver, the one way every command fails (one line,
exit 2, disk errors, crash files), and the words every command's options share (vocabulary).

May import: every subpackage but cms.
"""

from .._aliases import module_getattr as _module_getattr

#: ``timecal_core.cli`` was a module: its names still resolve, with a DeprecationWarning
__getattr__ = _module_getattr(__name__)
