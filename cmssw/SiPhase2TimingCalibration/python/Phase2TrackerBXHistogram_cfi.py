"""Default configuration of the Phase2TrackerBXHistogram DQM analyzer (module label timeCalib).

The running configurations (test/PUCalibration_cfg.py, test/PythiaGunCalibration_cfg.py)
overwrite the parameters users scan; the rest are the physics.md defaults. The names and
defaults are those of the plugin's fillDescriptions() (tests/test_cmssw_jobs.py checks it).
"""
import FWCore.ParameterSet.Config as cms
from DQMServices.Core.DQMEDAnalyzer import DQMEDAnalyzer

# Outer Tracker sim hits: barrel (TOB) and endcap disks (TID), low and high time of flight.
_otHitCollections = ['TrackerHitsTOBLowTof', 'TrackerHitsTOBHighTof',
                     'TrackerHitsTIDLowTof', 'TrackerHitsTIDHighTof']

timeCalib = DQMEDAnalyzer('Phase2TrackerBXHistogram',
    TopFolderName = cms.string('Ph2TkBXHist'),
    GeometryType = cms.string('idealForDigi'),
    SimTrackSource = cms.InputTag('g4SimHits'),
    # UseMixing: read the mixed crossing frames (pile-up) instead of the signal-only hits.
    UseMixing = cms.bool(False),
    PSimHitSource = cms.VInputTag(*[cms.InputTag('g4SimHits', c) for c in _otHitCollections]),
    MixPSimHitSource = cms.VInputTag(*[cms.InputTag('mix', 'g4SimHits' + c) for c in _otHitCollections]),
    # 'scan': every delay of OffsetMin..OffsetMax by OffsetStep; 'emulate': OffsetEmulate only.
    Mode = cms.string('scan'),
    # 'compat' reproduces the deployed analyzer bit for bit; 'exact' uses the continuous pulse.
    Model = cms.string('compat'),
    Subdetector = cms.string('ALL'),
    PTCut = cms.double(2.0),
    ThresholdInElectrons_Barrel = cms.double(5800.),
    ThresholdInElectrons_Endcap = cms.double(5800.),
    ThresholdSmearing_Barrel = cms.double(0.),
    ThresholdSmearing_Endcap = cms.double(0.),
    TOFSmearing = cms.double(0.),
    # The per-module offsets are a function of (seed, module): the same whatever thread sees
    # the module's hits, so the histograms do not depend on the number of threads; recorded
    # in Info/SmearingSeed.
    SmearingSeed = cms.uint32(1),
    # 'module': one offset per module (TrackerTopology::stack, both sensors share it);
    # 'sensor': one per sensor DetId, as the deployed analyzer drew them.
    SmearingKey = cms.string('module'),
    # Apply the CBC model to 2S modules only (PS modules are read out by the SSA/MPA).
    Only2SModules = cms.bool(False),
    OffsetMin = cms.double(0.),
    OffsetMax = cms.double(50.),
    OffsetStep = cms.double(0.1),  # also the width of the delay bins of the 2D maps
    OffsetEmulate = cms.double(0.),
    # (delay placeholder, tau, r, theta, n, A) of the CBC3 pulse, physics.md section 2.
    PulseShapeParameters = cms.vdouble(0., 16.043703, 99.999857, 40.571650, 2., 1.2459094),
    # 0: end-of-job summary; 1: + configuration and a line per event; 2: + a line per hit;
    # 3: + the BXs each hit fired at each delay (LogVerbatim: enable the category
    # Phase2TrackerBXHistogram in the MessageLogger to see 1-3).
    VerbosityLevel = cms.int32(0),
)
