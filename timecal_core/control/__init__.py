"""The seam between a driver and its monitors: every request a monitor may make and its
answer (:mod:`.requests`), and the owner-only Unix socket that carries them across
processes (:mod:`.unix_socket`). A monitor reaches a production only through here.

May import: contract, config, plan, ledger, views, run.
"""

from .._aliases import module_getattr as _module_getattr

#: ``timecal_core.control`` was a module: its names still resolve, with a DeprecationWarning
__getattr__ = _module_getattr(__name__)
