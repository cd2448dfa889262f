"""timecal: timing studies and calibration of the CMS Phase-2 Outer Tracker CBC readout chip.

The core knows nothing of any concrete backend or production script: those arrive as
plugins through the ``timecal`` entry-point group (see :mod:`timecal_core.contract.plugins`).
Its subpackages are layers, each importing only those below it (``tests/test_architecture.py``):
contract, config, plan, ledger, views, run, control, driver, monitor, batch, cli; and cms,
the CMS/ROOT specifics, which no other layer imports.
"""

__version__ = "0.1.0"

from . import _aliases

_aliases.install()  # the import paths before the subpackages (timecal_core.cms.fast_root, ...) still work
