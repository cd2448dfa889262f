"""A stand-in for CMSSW's Python configuration layer, because CMSSW cannot be installed here.

It provides just enough of ``FWCore.ParameterSet.Config`` (``cms``), ``VarParsing`` and the
CMSSW configuration fragments that our cfg files load to *execute* them: the tests can then
check what the cfg computes (option defaults, the output file name, the parameters handed to
the analyzer) instead of only that it compiles. It is not CMSSW: it does not validate module
parameters against their C++ descriptions, and objects defined by CMSSW fragments (``mix``,
``RandomNumberGeneratorService``...) are opaque containers that accept any attribute.
What it does enforce, as CMSSW does: only fragments it knows may be loaded and only the
objects those fragments define may be used; VarParsing rejects unknown or re-registered
options and converts values to the registered type; and, as cmsRun does while building the
schedule, every EDAlias of the process must point at products the aliased module's
configuration still makes (``check_aliases``, after FWCore/Framework/src/processEDAliases.cc):
the mixing fragments bring the EDAliases of SimGeneral/MixingModule/python/aliases_cfi.py and a
``mix`` whose digitizers are real, so emptying them without deleting the aliases fails here
as it fails in cmsRun.

``run_cfg(path, args, release=...) -> dict`` executes a cfg file with ``cmsRun``-like argv and
returns its globals (``process``, ``options``...). Our own package's modules and fragments
(``SimTracker.SiPhase2TimingCalibration.X``) are loaded from ``cmssw/.../python/X.py``.

``release`` picks one of ``RELEASES``: which geometry scenarios (``Configuration.Geometry.
GeometryExtended<scenario>[Reco]_cff``), eras and upgrade-workflow properties the simulated
release has, so that the cfgs are executed under both geometry naming schemes. Their content
is copied from cms-sw/cmssw (CMSSW_12_5: the ``2026`` names with D88; the ``Run4`` names of
the current master, where D88 is gone), limited to what the cfgs look up; the release names
stand for the scheme, not for a verified list of every file of that release.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGE = "SimTracker.SiPhase2TimingCalibration"
OUR_PYTHON_DIR = REPO_ROOT / "cmssw" / "SiPhase2TimingCalibration" / "python"


# --------------------------------------------------------------------------- parameters
class _Parameter:
    def __init__(self, type_name: str, value: Any, tracked: bool = True):
        self.type_name, self._value, self.tracked = type_name, value, tracked

    def value(self):
        return self._value

    def configTypeName(self) -> str:
        return self.type_name if self.tracked else "untracked " + self.type_name

    def __repr__(self):
        return f"cms.{self.configTypeName()}({self._value!r})"


class _VParameter(_Parameter):
    def __init__(self, type_name: str, values, tracked: bool = True):
        super().__init__(type_name, list(values), tracked)

    def extend(self, values):
        self._value.extend(values)

    def __iter__(self):
        return iter(self._value)

    def __len__(self):
        return len(self._value)

    def __getitem__(self, i):
        return self._value[i]


class InputTag:
    def __init__(self, module: str, instance: str = "", process: str = ""):
        self.moduleLabel, self.productInstanceLabel, self.processName = module, instance, process


class PSet:
    """Named parameters; reading a name that was never set is an error, as in CMSSW."""

    def __init__(self, **params):
        for name, value in params.items():
            setattr(self, name, value)

    def parameterNames_(self) -> list[str]:
        return [n for n in vars(self) if not n.startswith("_")]


def _scalar(type_name: str, convert, tracked: bool):
    return lambda value: _Parameter(type_name, convert(value), tracked)


def _vector(type_name: str, convert, tracked: bool):
    return lambda *values: _VParameter(type_name, [convert(v) for v in values], tracked)


def _string(value):
    if not isinstance(value, str):
        raise TypeError(f"cms.string needs a str, got {value!r}")
    return value


def _int(value):
    if isinstance(value, bool) or int(value) != value:
        raise TypeError(f"integer parameter needs an int, got {value!r}")
    return int(value)


def _uint(value):
    value = _int(value)
    if value < 0:
        raise ValueError(f"uint32 parameter needs a value >= 0, got {value}")
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise TypeError(f"cms.bool needs a bool, got {value!r}")
    return value


def _parameter_namespace(tracked: bool) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        double=_scalar("double", float, tracked), int32=_scalar("int32", _int, tracked),
        uint32=_scalar("uint32", _uint, tracked), int64=_scalar("int64", _int, tracked),
        string=_scalar("string", _string, tracked), bool=_scalar("bool", _bool, tracked),
        vdouble=_vector("vdouble", float, tracked), vint32=_vector("vint32", _int, tracked),
        vstring=_vector("vstring", _string, tracked),
        InputTag=lambda *a: InputTag(*a),
        VInputTag=lambda *tags: _VParameter("VInputTag", tags, tracked),
        PSet=lambda **kw: PSet(**kw),
        VPSet=lambda *psets: _VParameter("VPSet", psets, tracked),
    )


# --------------------------------------------------------------------------- modules, paths
class _Module(PSet):
    """A module: its parameters are fixed at construction (stricter than CMSSW, which would
    only reject an unknown parameter when the job starts, through the plugin's description)."""

    def __init__(self, kind: str, type_name: str, *args, **params):
        if not isinstance(type_name, str):
            raise TypeError(f"cms.{kind} needs the C++ type name first, got {type_name!r}")
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_type", type_name)
        for name, value in params.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        if name not in vars(self):
            raise AttributeError(f"{self._type} has no parameter '{name}'")
        object.__setattr__(self, name, value)

    def type_(self) -> str:
        return self._type


def _module_factory(kind: str):
    return lambda type_name, *args, **params: _Module(kind, type_name, *args, **params)


class Sequence:
    def __init__(self, *items):
        for item in items:
            if not isinstance(item, (_Module, Sequence, _External)):
                raise TypeError(f"cms.{type(self).__name__} item must be a module or sequence, got {item!r}")
        self.items = list(items)

    def insert(self, index: int, item):
        self.items.insert(index, item)


class Path(Sequence):
    pass


class EndPath(Sequence):
    pass


class Schedule:
    def __init__(self, *paths):
        for path in paths:
            if not isinstance(path, (Path, EndPath)):
                raise TypeError(f"cms.Schedule takes paths, got {path!r}")
        self.paths = list(paths)


class Modifier:
    def __init__(self, name: str):
        self.name = name


class _External:
    """An object defined by a CMSSW fragment: opaque, accepts any attribute like CMSSW's does."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        child = _External(f"{self._name}.{attr}")
        object.__setattr__(self, attr, child)
        return child

    def extend(self, values):
        object.__setattr__(self, "_extended", vars(self).get("_extended", []) + list(values))


# --------------------------------------------------------------------------- the mixing module
class EDAlias:
    """cms.EDAlias: for each module label, a VPSet of {type, fromProductInstance = '*',
    toProductInstance = '*'} (FWCore/ParameterSet/python/Modules.py); a label set to None
    (as era modifiers do, ``toModify(alias, mix = None)``) aliases nothing."""

    def __init__(self, **modules):
        for label, vpset in modules.items():
            setattr(self, label, vpset)

    def modules_(self) -> dict:
        return {label: vpset for label, vpset in vars(self).items() if vpset is not None}


def _alias(*entries, **modifiers) -> EDAlias:
    vpset = _VParameter("VPSet", [PSet(**{k: _Parameter("string", v) for k, v in e.items()}) for e in entries])
    return EDAlias(mix=None if modifiers.get("dropped") else vpset)


def _phase2_aliases() -> dict[str, EDAlias]:
    """SimGeneral/MixingModule/python/aliases_cfi.py (loaded by digitizers_cfi.py, hence by
    every mix_*_cfi.py), as the Phase-2 eras of the cfgs leave it: run3_common drops
    simCastorDigis.mix, phase2_tracker drops simSiStripDigis.mix and simAPVsaturation.mix,
    ~phase2_hfnose drops simHFNoseUnsuppressedDigis.mix; phase2_hgcal keeps the HGCal one."""
    hgcal = [{"type": "DetIdHGCSampleHGCDataFramesSorted", "fromProductInstance": f"HGCDigis{part}",
              "toProductInstance": part} for part in ("EE", "HEfront", "HEback")]
    return {
        "simCastorDigis": _alias({"type": "CastorDataFramesSorted"}, dropped=True),
        "simEcalUnsuppressedDigis": _alias({"type": "EBDigiCollection"}, {"type": "EEDigiCollection"},
                                           {"type": "ESDigiCollection"}),
        "simHcalUnsuppressedDigis": _alias(*({"type": t} for t in (
            "HBHEDataFramesSorted", "HFDataFramesSorted", "HODataFramesSorted", "ZDCDataFramesSorted",
            "QIE10DataFrameHcalDataFrameContainer", "QIE11DataFrameHcalDataFrameContainer"))),
        "simSiPixelDigis": _alias({"type": "PixelDigiedmDetSetVector"}, {"type": "PixelDigiSimLinkedmDetSetVector"}),
        "simSiStripDigis": _alias({"type": "SiStripDigiedmDetSetVector"}, dropped=True),
        "simHGCalUnsuppressedDigis": _alias(*hgcal),
        "simHFNoseUnsuppressedDigis": _alias({"type": "DetIdHGCSampleHGCDataFramesSorted",
                                              "fromProductInstance": "HFNoseDigis"}, dropped=True),
        "simAPVsaturation": _alias({"type": "bool"}, dropped=True),
    }


# What each digi accumulator makes in the MixingModule (friendly class name, instance):
# the produces<>() calls of SimTracker/SiPhase2Digitizer/plugins/Phase2TrackerDigitizer.cc,
# SimCalorimetry/EcalSimProducers/src/EcalDigiProducer.cc, SimCalorimetry/HcalSimProducers/
# src/HcalDigiProducer.cc, SimCalorimetry/HGCalSimProducers/plugins/HGCDigiProducer.cc,
# SimGeneral/TrackingAnalysis/plugins/TrackingTruthAccumulator.cc and
# SimGeneral/MixingModule/plugins/PileupVertexAccumulator.cc.
ACCUMULATOR_PRODUCTS: dict[str, tuple[tuple[str, str], ...]] = {
    "Phase2TrackerDigitizer": (("PixelDigiedmDetSetVector", "Pixel"), ("PixelDigiSimLinkedmDetSetVector", "Pixel"),
                               ("Phase2TrackerDigiedmDetSetVector", "Tracker"),
                               ("PixelDigiSimLinkedmDetSetVector", "Tracker")),
    "EcalDigiProducer": (("EBDigiCollection", ""), ("EEDigiCollection", ""), ("ESDigiCollection", "")),
    "HcalDigiProducer": tuple((t, "") for t in (
        "HBHEDataFramesSorted", "HFDataFramesSorted", "HODataFramesSorted", "ZDCDataFramesSorted",
        "QIE10DataFrameHcalDataFrameContainer", "QIE11DataFrameHcalDataFrameContainer")),
    "HGCDigiProducer": tuple(("DetIdHGCSampleHGCDataFramesSorted", f"HGCDigis{part}")
                             for part in ("EE", "HEfront", "HEback")),
    "TrackingTruthAccumulator": (("TrackingParticles", "MergedTrackTruth"), ("TrackingVertexs", "MergedTrackTruth")),
    "PileupVertexAccumulator": (("PileupVertexContent", ""),),
}


def _phase2_digitizers() -> PSet:
    """theDigitizers of SimGeneral/MixingModule/python/digitizers_cfi.py under the Phase-2
    eras (phase2_tracker: the pixel digitizer is the Phase2TrackerDigitizer and there is no
    strip one; run3_common: no castor; phase2_hgcal: the three HGCal digitizers)."""
    def digitizer(kind):
        return PSet(accumulatorType=_Parameter("string", kind))

    return PSet(pixel=digitizer("Phase2TrackerDigitizer"), ecal=digitizer("EcalDigiProducer"),
                hcal=digitizer("HcalDigiProducer"), puVtx=digitizer("PileupVertexAccumulator"),
                mergedtruth=digitizer("TrackingTruthAccumulator"), hgceeDigitizer=digitizer("HGCDigiProducer"),
                hgchebackDigitizer=digitizer("HGCDigiProducer"), hgchefrontDigitizer=digitizer("HGCDigiProducer"))


class _MixingModule(_External):
    """``mix`` of the mix_*_cfi.py fragments: its ``digitizers`` are real (a PSet of digi
    accumulators, as the cfgs replace them), everything else is opaque."""

    def __init__(self):
        super().__init__("mix")
        object.__setattr__(self, "digitizers", _phase2_digitizers())

    def products(self) -> set[tuple[str, str]]:
        """What the MixingModule of this configuration registers (MixingModule.cc: its own
        PileupMixingContent and CrossingFramePlaybackInfoNew, the crossing frames asked for,
        and every digi accumulator's products, createDigiAccumulators)."""
        made = {("PileupMixingContent", ""), ("CrossingFramePlaybackInfoNew", "")}
        for name in self.digitizers.parameterNames_():
            made.update(ACCUMULATOR_PRODUCTS.get(getattr(self.digitizers, name).accumulatorType.value(), ()))
        def child(node, *names):
            for name in names:
                node = vars(node).get(name) if node is not None else None
            return node

        frames = child(self, "mixObjects", "mixSH", "crossingFrames")
        for collection in vars(frames).get("_extended", []) if frames is not None else []:
            made.add(("CrossingFramePSimHit", "g4SimHits" + collection))
        if child(self, "mixObjects", "mixTracks", "makeCrossingFrame") is not None:
            made.add(("CrossingFrameSimTrack", "g4SimHits"))
        return made


class CmsRunError(RuntimeError):
    """What cmsRun would stop with while constructing the schedule (category, message)."""

    def __init__(self, category: str, message: str):
        super().__init__(f"[{category}] {message}")
        self.category = category


def _scheduled(process) -> list:
    """The modules cmsRun creates: those on the scheduled paths and end paths (a module on no
    path is dropped, FWCore/Framework/src/Schedule.cc reduceParameterSet)."""
    schedule = vars(process).get("schedule")
    paths = schedule.paths if isinstance(schedule, Schedule) else [*process.paths.values(), *process.endpaths.values()]
    found, stack = [], list(paths)
    while stack:
        item = stack.pop()
        if isinstance(item, Sequence):
            stack.extend(item.items)
        elif all(item is not other for other in found):
            found.append(item)
    return found


def check_aliases(process) -> None:
    """FWCore/Framework/src/processEDAliases.cc, as Schedule.cc runs it on every alias of the
    process (``@all_aliases``, FWCore/ParameterSet/python/Config.py) at start-up: an alias
    entry for a module label that was created, but whose configuration makes no product of
    the aliased type (and instance), throws a Configuration exception. A label no created
    module has is ignored. Only the mixing module declares its products here."""
    products = {module._name: module.products() for module in _scheduled(process) if isinstance(module, _MixingModule)}
    for alias, definition in process.aliases.items():
        for label, vpset in definition.modules_().items():
            made = products.get(label)
            if not made:
                continue  # no module with this label was created in this process
            for entry in vpset:
                kind = entry.type.value()
                instance = entry.fromProductInstance.value() if "fromProductInstance" in vars(entry) else "*"
                if instance == "*" and not any(t == kind for t, _ in made):
                    raise CmsRunError("Configuration", f"EDAlias parameter set mismatch\nThere are no products of type "
                                                       f"'{kind}'\nwith module label '{label}'. (alias {alias})")
                if instance != "*" and (kind, instance) not in made:
                    raise CmsRunError("Configuration", f"EDAlias does not match data\nThere are no products of type "
                                                       f"'{kind}'\nwith module label '{label}' and instance name "
                                                       f"'{instance}'. (alias {alias})")


def check_consumed_from_mixing(process, module_label: str, parameter: str) -> None:
    """The crossing frames ``module_label`` reads through the VInputTag ``parameter`` are
    made by the mixing module of this configuration (otherwise Event::get throws
    ProductNotFound at the first event, FWCore/Framework/interface/Event.h)."""
    mix = vars(process).get("mix")
    made = mix.products() if isinstance(mix, _MixingModule) else set()
    for tag in getattr(getattr(process, module_label), parameter):
        if tag.moduleLabel == "mix" and not any(i == tag.productInstanceLabel for _, i in made):
            raise CmsRunError("ProductNotFound", f"{module_label}.{parameter}: mix:{tag.productInstanceLabel} is not "
                                                 f"made by this configuration's mixing module")


# Objects each CMSSW fragment defines (only those our cfg files use).
KNOWN_FRAGMENTS: dict[str, tuple[str, ...]] = {
    "Configuration.StandardSequences.Services_cff": ("RandomNumberGeneratorService", "DQMStore"),
    "SimGeneral.HepPDTESSource.pythiapdt_cfi": ("HepPDTESSource",),
    "FWCore.MessageService.MessageLogger_cfi": ("MessageLogger",),
    "Configuration.EventContent.EventContent_cff": ("DQMEventContent", "FEVTDEBUGEventContent"),
    "SimGeneral.MixingModule.mix_POISSON_average_cfi": ("mix",),
    "SimGeneral.MixingModule.mixNoPU_cfi": ("mix",),
    "Configuration.StandardSequences.MagneticField_cff": ("VolumeBasedMagneticFieldESProducer",),
    "Configuration.StandardSequences.Generator_cff": ("pgen",),
    "IOMC.EventVertexGenerators.VtxSmearedHLLHC14TeV_cfi": ("VtxSmeared",),
    "GeneratorInterface.Core.genFilterSummary_cff": ("genFilterSummary",),
    "Configuration.StandardSequences.SimIdeal_cff": ("psim", "g4SimHits"),
    "Configuration.StandardSequences.EndOfProcess_cff": ("endOfProcess",),
    "Configuration.StandardSequences.FrontierConditions_GlobalTag_cff": ("GlobalTag",),
    "DQMServices.Core.DQMStoreNonLegacy_cff": ("DQMStore",),
    "Configuration.StandardSequences.DQMSaverAtRunEnd_cff": ("dqmSaver", "DQMSaver"),
}


MIXING_FRAGMENTS = ("SimGeneral.MixingModule.mix_POISSON_average_cfi", "SimGeneral.MixingModule.mixNoPU_cfi")


def _upgrade(geometry: str, era: str, globaltag: str) -> dict:
    return {"Geom": "Extended" + geometry, "GT": globaltag, "Era": era}


# What a simulated release provides: geometry scenarios, eras, and the upgradeProperties of
# Configuration/PyReleaseValidation/python/upgradeWorkflowComponents.py (keyed by 2026 in the
# 12_x releases, by 'Run4' after the rename).
RELEASES: dict[str, dict] = {
    "CMSSW_12_5_0": {
        "geometries": ("2026D86", "2026D88"),
        "eras": ("Phase2C17I13M9",),
        "upgradeProperties": {2026: {"2026D86": _upgrade("2026D86", "Phase2C17I13M9", "auto:phase2_realistic_T21"),
                                     "2026D88": _upgrade("2026D88", "Phase2C17I13M9", "auto:phase2_realistic_T21")}},
    },
    "CMSSW_15_0_0": {
        "geometries": ("Run4D104", "Run4D110"),
        "eras": ("Phase2C17I13M9", "Phase2C22I13M9"),
        "upgradeProperties": {"Run4": {
            "Run4D104": _upgrade("Run4D104", "Phase2C22I13M9", "auto:phase2_realistic_T33"),
            "Run4D110": _upgrade("Run4D110", "Phase2C17I13M9", "auto:phase2_realistic_T33")}},
    },
}
DEFAULT_RELEASE = "CMSSW_12_5_0"  # the release of the users' current tool
_current_release = {"name": DEFAULT_RELEASE}


def _geometry_fragments(release: str) -> dict[str, tuple[str, ...]]:
    fragments = {}
    for geometry in RELEASES[release]["geometries"]:
        fragments[f"Configuration.Geometry.GeometryExtended{geometry}Reco_cff"] = ("trackerGeometry", "trackerTopology")
        fragments[f"Configuration.Geometry.GeometryExtended{geometry}_cff"] = ("XMLIdealGeometryESSource",)
    return fragments


class Process:
    def __init__(self, name: str, *modifiers):
        for modifier in modifiers:
            if not isinstance(modifier, Modifier):
                raise TypeError(f"cms.Process modifiers must be eras/modifiers, got {modifier!r}")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_loaded", [])
        object.__setattr__(self, "_paths", {})
        object.__setattr__(self, "_endpaths", {})
        object.__setattr__(self, "_aliases", {})
        self.maxEvents = PSet(input=_Parameter("int32", -1, tracked=False))
        self.options = PSet()

    def name_(self) -> str:
        return self._name

    def __setattr__(self, name, value):
        if isinstance(value, EndPath):
            self._endpaths[name] = value
        elif isinstance(value, Path):
            self._paths[name] = value
        elif isinstance(value, EDAlias):
            self._aliases[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        """As Config.py's Process.__delattr__: the name leaves every registry too."""
        if name not in vars(self):
            raise KeyError(f"process does not know about {name}")
        for registry in (self._paths, self._endpaths, self._aliases):
            registry.pop(name, None)
        object.__delattr__(self, name)

    @property
    def aliases(self) -> dict:
        """A copy, as Config.py's ``aliases`` (so ``delattr`` while iterating it is fine)."""
        return dict(self._aliases)

    @property
    def paths(self) -> dict:
        return dict(self._paths)

    @property
    def endpaths(self) -> dict:
        return dict(self._endpaths)

    def load(self, fragment: str) -> None:
        self._loaded.append(fragment)
        if fragment.startswith(OUR_PACKAGE + "."):
            path = OUR_PYTHON_DIR / (fragment[len(OUR_PACKAGE) + 1:] + ".py")
            if not path.is_file():
                raise ImportError(f"No module named '{fragment}' (no {path})")
            for name, value in runpy.run_path(str(path)).items():
                if not name.startswith("_") and isinstance(value, (PSet, Sequence)):
                    setattr(self, name, value)
            return
        known = {**KNOWN_FRAGMENTS, **_geometry_fragments(_current_release["name"])}
        if fragment.startswith("Configuration.Geometry.") and fragment not in known:
            raise ImportError(f"No module named '{fragment}'")  # as in a release without it
        if fragment not in known:
            raise ImportError(f"stand-in: unknown CMSSW fragment '{fragment}' (add it to KNOWN_FRAGMENTS)")
        for name in known[fragment]:
            if name not in vars(self):
                object.__setattr__(self, name, _MixingModule() if name == "mix" else _External(name))
        if fragment in MIXING_FRAGMENTS:  # they import digitizers_cfi, which imports aliases_cfi
            for name, alias in _phase2_aliases().items():
                if name not in vars(self):
                    setattr(self, name, alias)


def _untracked_namespace():
    ns = _parameter_namespace(tracked=False)

    def untracked(parameter):
        parameter.tracked = False
        return parameter

    for name, value in vars(ns).items():
        setattr(untracked, name, value)
    return untracked


def _config_module() -> types.ModuleType:
    cms = types.ModuleType("FWCore.ParameterSet.Config")
    for name, value in vars(_parameter_namespace(tracked=True)).items():
        setattr(cms, name, value)
    cms.untracked = _untracked_namespace()
    for kind in ("EDAnalyzer", "EDProducer", "EDFilter", "OutputModule", "Source", "Service",
                 "ESSource", "ESProducer"):
        setattr(cms, kind, _module_factory(kind))
    cms.Process, cms.Sequence, cms.Path, cms.EndPath, cms.Schedule, cms.Modifier, cms.EDAlias = (
        Process, Sequence, Path, EndPath, Schedule, Modifier, EDAlias)
    return cms


# --------------------------------------------------------------------------- VarParsing
class _Enum:
    def __init__(self, *names):
        for name in names:
            setattr(self, name, name)


class VarParsing:
    """Options given as ``name=value`` after the cfg file on the cmsRun command line."""

    multiplicity = _Enum("singleton", "list")
    varType = _Enum("bool", "int", "float", "string")

    def __init__(self, *setups):
        object.__setattr__(self, "_register", {})
        object.__setattr__(self, "_values", {})
        for setup in setups:
            if setup != "analysis":
                raise RuntimeError(f"stand-in VarParsing only knows the 'analysis' setup, got {setup!r}")
            single, many = self.multiplicity.singleton, self.multiplicity.list
            self.register("maxEvents", -1, single, self.varType.int, "Number of events to process (-1 for all)")
            self.register("totalSections", 0, single, self.varType.int, "")
            self.register("section", 0, single, self.varType.int, "")
            self.register("inputFiles", "", many, self.varType.string, "Files to process")
            self.register("secondaryInputFiles", "", many, self.varType.string, "")
            self.register("filePrepend", "", single, self.varType.string, "")
            self.register("outputFile", "output.root", single, self.varType.string, "")
            self.register("secondaryOutputFile", "", single, self.varType.string, "")
            self.register("tag", "", single, self.varType.string, "")
            self.register("storePrepend", "", single, self.varType.string, "")

    def register(self, name, default="", mult=None, mytype=None, info=""):
        if name in self._register:
            raise RuntimeError(f"VarParsing: option '{name}' is already registered")
        mult = mult or self.multiplicity.singleton
        mytype = mytype or self.varType.int
        self._register[name] = (mult, mytype)
        if mult == self.multiplicity.list:
            self._values[name] = [] if default == "" else list(default)
        else:
            self._values[name] = default

    def _convert(self, name, text):
        kind = self._register[name][1]
        try:
            if kind == "int":
                return int(text, 0)
            if kind == "float":
                return float(text)
            if kind == "bool":
                lowered = text.lower()
                if lowered in ("1", "true", "t", "yes", "y"):
                    return True
                if lowered in ("0", "false", "f", "no", "n"):
                    return False
                raise ValueError(text)
            return text
        except ValueError:
            raise RuntimeError(f"VarParsing: option '{name}' expects {kind}, got '{text}'") from None

    def parseArguments(self):
        found_cfg = False
        for arg in sys.argv[1:]:
            if not found_cfg:
                found_cfg = arg.endswith(".py")
                continue
            if "=" not in arg:
                raise RuntimeError(f"VarParsing: argument '{arg}' is not name=value")
            name, text = arg.split("=", 1)
            if name not in self._register:
                raise RuntimeError(f"VarParsing: unknown option '{name}'")
            if self._register[name][0] == self.multiplicity.list:
                self._values[name].extend(self._convert(name, t) for t in text.split(",") if t)
            else:
                self._values[name] = self._convert(name, text)

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"VarParsing: no option '{name}'")

    def __setattr__(self, name, value):
        if name not in self._register:
            raise RuntimeError(f"VarParsing: no option '{name}'")
        self._values[name] = value

    def defaults(self) -> dict:
        """Not CMSSW API: the registered names (tests read the defaults through this)."""
        return dict(self._values)


# --------------------------------------------------------------------------- installation
def _existing(name: str) -> types.ModuleType:
    """A module that importlib.util.find_spec() reports as present."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def _our_module(name: str) -> types.ModuleType:
    """SimTracker.SiPhase2TimingCalibration.X from cmssw/SiPhase2TimingCalibration/python/X.py."""
    path = OUR_PYTHON_DIR / (name[len(OUR_PACKAGE) + 1:] + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _modules(release: str = DEFAULT_RELEASE) -> dict[str, types.ModuleType]:
    if release not in RELEASES:
        raise ValueError(f"stand-in: unknown release {release!r} (known: {', '.join(RELEASES)})")
    cms = _config_module()
    varparsing = types.ModuleType("FWCore.ParameterSet.VarParsing")
    varparsing.VarParsing = VarParsing
    dqm = types.ModuleType("DQMServices.Core.DQMEDAnalyzer")
    dqm.DQMEDAnalyzer = lambda type_name, *a, **kw: _Module("EDProducer", type_name, *a, **kw)
    eras = []
    for name in RELEASES[release]["eras"]:
        era = _existing(f"Configuration.Eras.Era_{name}_cff")
        setattr(era, name, Modifier(name))
        eras.append(era)
    geometries = [_existing(name) for name in _geometry_fragments(release)]
    workflows = _existing("Configuration.PyReleaseValidation.upgradeWorkflowComponents")
    workflows.upgradeProperties = RELEASES[release]["upgradeProperties"]
    globaltag = types.ModuleType("Configuration.AlCa.GlobalTag")

    def GlobalTag(essource, globaltag: str, conditions: str = ""):
        if not isinstance(essource, _External) or not globaltag:
            raise TypeError("GlobalTag(process.GlobalTag, 'auto:...', '') expected")
        essource.globaltag = globaltag
        return essource

    globaltag.GlobalTag = GlobalTag
    leaves = {m.__name__: m for m in (cms, varparsing, dqm, globaltag, workflows, *eras, *geometries)}
    modules = {}
    for full_name, leaf in leaves.items():
        parts = full_name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            modules.setdefault(parent, types.ModuleType(parent))
            modules[parent].__path__ = []  # a package
        modules[full_name] = leaf
    for name in ("SimTracker", OUR_PACKAGE):  # our package: its plain modules are added by installed()
        modules.setdefault(name, types.ModuleType(name)).__path__ = []
    for name, module in modules.items():
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(modules[parent], child, module)
    return modules


@contextlib.contextmanager
def installed(release: str = DEFAULT_RELEASE):
    """The stand-in modules of `release` in ``sys.modules`` (and ``CMSSW_VERSION`` in the
    environment, as cmsenv sets it) for the duration of the block."""
    modules = _modules(release)
    clashing = [n for n in modules if n in sys.modules]
    if clashing:
        raise RuntimeError(f"real modules already imported, refusing to shadow them: {clashing}")
    old_version = os.environ.get("CMSSW_VERSION")
    sys.modules.update(modules)
    _current_release["name"] = release
    os.environ["CMSSW_VERSION"] = release
    ours = []
    try:
        for path in sorted(OUR_PYTHON_DIR.glob("*.py")):
            name = f"{OUR_PACKAGE}.{path.stem}"
            if not path.stem.endswith(("_cfi", "_cff")):  # plain modules the cfgs import
                sys.modules[name] = _our_module(name)
                setattr(sys.modules[OUR_PACKAGE], path.stem, sys.modules[name])
                ours.append(name)
        yield
    finally:
        for name in [*modules, *ours]:
            sys.modules.pop(name, None)
        _current_release["name"] = DEFAULT_RELEASE
        if old_version is None:
            os.environ.pop("CMSSW_VERSION", None)
        else:
            os.environ["CMSSW_VERSION"] = old_version


def run_cfg(path: Path, args: list[str] = (), cwd: Path | None = None,
            release: str = DEFAULT_RELEASE, start: bool = True) -> dict[str, Any]:
    """Execute a cfg file as ``cmsRun <path> <args...>`` would parse it in `release`, then
    (``start``) run the start-up checks cmsRun makes while building the schedule
    (:func:`check_aliases`, raising :class:`CmsRunError`); return the cfg's globals."""
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = ["cmsRun", str(path), *args]
    try:
        if cwd is not None:
            os.chdir(cwd)
        with installed(release):
            namespace = runpy.run_path(str(path), run_name="__main__")
        if start and isinstance(namespace.get("process"), Process):
            check_aliases(namespace["process"])  # what cmsRun checks before the first event
        return namespace
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
