"""The scan parameters of the CMSSW cfg files, declared once.

``PUCalibration_cfg.py`` (and its siblings) register these options with VarParsing; the
``pucalibration`` script passes them to cmsRun and the ``cbcsim`` emulator accepts the same
ones so that a grid written for one runs with the other. Both plugins take their
declarations from here (names, types, defaults, units, limits, help), and
``tests/test_cms_parameters.py`` checks them against the cfg files, so the copies that used to
drift apart ("time-of-arrival" in one, "time-of-flight" in the other) cannot come back.
"""

from __future__ import annotations

from ..contract.errors import UserError
from ..contract.hookspecs import Parameter

#: Regions of the Outer Tracker (physics.md section 1), ``ALL`` first.
SUBDETS = ("ALL", "BLL", "BLH", "BHL", "BHH", "ELL", "ELH", "EHL", "EHH")
MODES = ("scan", "emulate")

# ``help`` is the cfg's help text, word for word (its unit included); ``unit`` is the same unit
# for programs (error messages, plot labels). ``work=True``: more of it is more work per task
# (what ``BXRun --pilot`` spans to measure the cost of a grid).
CMS_PARAMETERS: tuple[Parameter, ...] = (
    # no minimum: -1 is cmsRun's "every event of the input" (maxEvents), which the emulator
    # cannot do; each script's check says what it allows
    Parameter("N", "int", 1, "Number of events to be processed", work=True),
    Parameter("pileup", "int", 200, "Mean number of minimum-bias events mixed in as pile-up", minimum=0,
              work=True),
    Parameter("pt", "float", 2.0, "Minimum pT of the track of a hit (GeV)", unit="GeV", minimum=0),
    Parameter("threshold", "float", 5800.0, "CBC threshold in electrons (barrel and endcap)",
              unit="electrons", minimum=0),
    Parameter("thresholdsmearing", "float", 0.0, "Per-module threshold smearing, uniform +- value (electrons)",
              unit="electrons", minimum=0),
    Parameter("tofsmearing", "float", 0.0, "Per-module time-of-flight smearing, uniform +- value (ns)",
              unit="ns", minimum=0),
    Parameter("mode", "str", "scan", "scan (all delays) | emulate (a single delay)", choices=MODES),
    Parameter("subdet", "str", "ALL", "Region of the Outer Tracker: " + " | ".join(SUBDETS),
              choices=SUBDETS),
    Parameter("offset", "float", -1.0,
              "Delay in emulate mode (ns); -1 draws it uniformly in [0, 50) to 0.01 ns", unit="ns"),
    Parameter("verbose", "int", 0, "0 (end-of-job summary) | 1 (+ configuration, a line per event) | "
              "2 (+ a line per hit) | 3 (+ the BXs each hit fired at each delay)", choices=(0, 1, 2, 3)),
    Parameter("HSfile", "path", None, "Text file listing the hard-scattering GEN-SIM files",
              required=True),
    Parameter("PUfile", "path", None, "Text file listing the pile-up (minimum-bias) GEN-SIM files",
              required=True),
)

BY_NAME = {p.name: p for p in CMS_PARAMETERS}


def cms_parameters(*names: str) -> tuple[Parameter, ...]:
    """The declarations of ``names``, in the order given (KeyError for a name not declared)."""
    return tuple(BY_NAME[n] for n in names)


def check_offset(values) -> None:
    """``offset`` is a delay >= 0 ns, or -1 (drawn at random): a rule both scripts apply in
    their ``check`` hook, since a minimum alone cannot say it."""
    for v in values:
        if v < 0 and v != -1:
            raise UserError(f"parameter 'offset' got {v!r}; allowed: a delay >= 0 ns, "
                            f"or -1 (drawn at random)")
