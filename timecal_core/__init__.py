"""timecal: timing studies and calibration of the CMS Phase-2 Outer Tracker CBC readout chip.

The core knows nothing of any concrete backend or production script: those arrive as
plugins through the ``timecal`` entry-point group (see :mod:`timecal_core.plugins`).
"""

__version__ = "0.1.0"
