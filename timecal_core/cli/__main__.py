"""``python -m timecal_core.cli``, as before the subpackages: BXRun (now
``python -m timecal_core.cli.bxrun``)."""

import sys
import warnings

from .bxrun import main

warnings.warn("python -m timecal_core.cli is deprecated: use python -m timecal_core.cli.bxrun",
              DeprecationWarning, stacklevel=1)
sys.exit(main())
