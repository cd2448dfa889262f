"""BX histograms of a high-pT muon gun, generated and simulated in the same job (no pile-up).

    cmsRun PythiaGunCalibration_cfg.py N=1000 threshold=5800

A quick, input-free cross-check of the PUCalibration_cfg.py production: same analyzer, same
parameters except pile-up (fixed to 0 in the output name), same output naming.
"""
import random

from FWCore.ParameterSet.VarParsing import VarParsing

options = VarParsing('analysis')
options.register('N', 100, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Number of gun events")
options.register('pt', 2., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Minimum pT of the track of a hit (GeV)")
options.register('gunptmin', 10., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Minimum pT of the generated muons (GeV)")
options.register('gunptmax', 100., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Maximum pT of the generated muons (GeV)")
options.register('threshold', 5800., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "CBC threshold in electrons (barrel and endcap)")
options.register('thresholdsmearing', 0., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Per-module threshold smearing, uniform +- value (electrons)")
options.register('tofsmearing', 0., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Per-module time-of-flight smearing, uniform +- value (ns)")
options.register('mode', 'scan', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "scan (all delays) | emulate (a single delay)")
options.register('subdet', 'ALL', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Region of the Outer Tracker: ALL | BLL | BLH | BHL | BHH | ELL | ELH | EHL | EHH")
options.register('offset', -1., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Delay in emulate mode (ns); -1 draws it uniformly in [0, 50) to 0.01 ns")
options.register('smearingseed', 0, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Seed of the per-module smearing, 1..2^32-1 (0: drawn at random; recorded in the output)")
options.register('smearingkey', 'module', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "module (one offset per module) | sensor (one per sensor, as the deployed analyzer)")
options.register('only2s', False, VarParsing.multiplicity.singleton, VarParsing.varType.bool,
                 "Apply the CBC model to 2S modules only (PS modules are read out by the SSA/MPA)")
options.register('geometry', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Phase-2 geometry scenario of the GEN-SIM input, e.g. 2026D88 or Run4D110 "
                 "(default: D88 where the release has it, i.e. 12_5-14_0, else D110)")
options.register('era', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Era (default: the one the release's upgrade workflows use with the geometry)")
options.register('globaltag', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Global tag (default: the one the release's upgrade workflows use with the geometry)")
options.register('verbose', 0, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "0 (end-of-job summary) | 1 (+ configuration, a line per event) | 2 (+ a line per hit) | "
                 "3 (+ the BXs each hit fired at each delay)")
options.parseArguments()

import math

import FWCore.ParameterSet.Config as cms
from SimTracker.SiPhase2TimingCalibration.releaseConditions import choose

# Geometry, era and global tag follow the release unless given (releaseConditions.py).
geometry, era, era_name, globaltag, geometry_fragments = choose(options.geometry, options.era, options.globaltag,
                                                                reco_only=False)
print("Geometry %s, era %s, global tag %s" % (geometry, era_name, globaltag))

if not 0 <= options.verbose <= 3:
    raise RuntimeError("verbose=%s not understood (allowed: 0, 1, 2, 3)" % options.verbose)
if options.mode not in ('scan', 'emulate'):
    raise RuntimeError("mode=%s not understood (allowed: scan, emulate)" % options.mode)
if options.smearingkey not in ('module', 'sensor'):
    raise RuntimeError("smearingkey=%s not understood (allowed: module, sensor)" % options.smearingkey)
if not 0 <= options.smearingseed < 2**32:
    raise RuntimeError("smearingseed=%s: give 1..4294967295, or 0 to draw one" % options.smearingseed)
# The offsets are a function of (seed, module): the same in every stream and thread.
smearing_seed = options.smearingseed or random.randrange(1, 2**32)
print("Smearing seed %d" % smearing_seed)

offset_emulate = None
if options.mode == 'emulate':
    if options.offset < 0 and options.offset != -1.:
        raise RuntimeError("offset=%s: give a delay >= 0 (ns), or -1 to draw one" % options.offset)
    offset_emulate = random.randrange(5000) / 100. if options.offset == -1. else round(options.offset, 2)

stem = 'subdet_{}_N_{}_pileup_0_pt_{:.1f}_threshold_{}_thresholdsmearing_{:.1f}_tofsmearing_{:.1f}'.format(
    options.subdet, options.N, options.pt, int(options.threshold), options.thresholdsmearing, options.tofsmearing)
head = 'BXHistScan_' if offset_emulate is None else 'BXHistEmulateDelay_{:.2f}_'.format(offset_emulate)
filename = (head + stem).replace('.', 'p') + '_raw.root'
print("Producing file %s" % filename)

process = cms.Process('BXHISTGUN', era)

process.load('Configuration.StandardSequences.Services_cff')
process.load('SimGeneral.HepPDTESSource.pythiapdt_cfi')
process.load('FWCore.MessageService.MessageLogger_cfi')
process.load('Configuration.EventContent.EventContent_cff')
process.load('SimGeneral.MixingModule.mixNoPU_cfi')
for fragment in geometry_fragments:
    process.load(fragment)
process.load('Configuration.StandardSequences.MagneticField_cff')
process.load('Configuration.StandardSequences.Generator_cff')
process.load('IOMC.EventVertexGenerators.VtxSmearedHLLHC14TeV_cfi')
process.load('GeneratorInterface.Core.genFilterSummary_cff')
process.load('Configuration.StandardSequences.SimIdeal_cff')
process.load('Configuration.StandardSequences.EndOfProcess_cff')
process.load('Configuration.StandardSequences.FrontierConditions_GlobalTag_cff')
process.load('DQMServices.Core.DQMStoreNonLegacy_cff')

from Configuration.AlCa.GlobalTag import GlobalTag
process.GlobalTag = GlobalTag(process.GlobalTag, globaltag, '')

process.maxEvents = cms.untracked.PSet(input=cms.untracked.int32(options.N))
process.source = cms.Source("EmptySource")

process.generator = cms.EDFilter("Pythia8PtGun",
    PGunParameters=cms.PSet(
        AddAntiParticle=cms.bool(True),
        MaxEta=cms.double(2.5),
        MaxPhi=cms.double(math.pi),
        MaxPt=cms.double(options.gunptmax),
        MinEta=cms.double(-2.5),
        MinPhi=cms.double(-math.pi),
        MinPt=cms.double(options.gunptmin),
        ParticleID=cms.vint32(-13),
    ),
    PythiaParameters=cms.PSet(parameterSets=cms.vstring()),
    Verbosity=cms.untracked.int32(0),
    firstRun=cms.untracked.uint32(1),
    psethack=cms.string('muon gun for CBC timing calibration'),
)
process.ProductionFilterSequence = cms.Sequence(process.generator)

process.load('SimTracker.SiPhase2TimingCalibration.Phase2TrackerBXHistogram_cfi')
process.timeCalib.UseMixing = cms.bool(False)
process.timeCalib.PTCut = cms.double(options.pt)
process.timeCalib.ThresholdInElectrons_Barrel = cms.double(options.threshold)
process.timeCalib.ThresholdInElectrons_Endcap = cms.double(options.threshold)
process.timeCalib.ThresholdSmearing_Barrel = cms.double(options.thresholdsmearing)
process.timeCalib.ThresholdSmearing_Endcap = cms.double(options.thresholdsmearing)
process.timeCalib.TOFSmearing = cms.double(options.tofsmearing)
process.timeCalib.Mode = cms.string(options.mode)
process.timeCalib.Subdetector = cms.string(options.subdet)
process.timeCalib.VerbosityLevel = cms.int32(options.verbose)
if options.verbose > 0:
    # The verbose output is LogVerbatim (INFO), which the default MessageLogger hides (cerr:
    # INFO limit 0); a limit for the category shows it. The end-of-job summary is always shown.
    process.MessageLogger.cerr.Phase2TrackerBXHistogram = cms.untracked.PSet(limit=cms.untracked.int32(-1))
process.timeCalib.SmearingSeed = cms.uint32(smearing_seed)
process.timeCalib.SmearingKey = cms.string(options.smearingkey)
process.timeCalib.Only2SModules = cms.bool(options.only2s)
if offset_emulate is not None:
    process.timeCalib.OffsetEmulate = cms.double(offset_emulate)

for engine in ('generator', 'VtxSmeared', 'g4SimHits'):
    getattr(process.RandomNumberGeneratorService, engine).initialSeed = random.randrange(1, 10**8)

process.DQMoutput = cms.OutputModule("DQMRootOutputModule",
    dataset=cms.untracked.PSet(dataTier=cms.untracked.string('DQMIO'), filterName=cms.untracked.string('')),
    fileName=cms.untracked.string('file:' + filename),
    outputCommands=process.DQMEventContent.outputCommands,
    splitLevel=cms.untracked.int32(0),
)

process.generation_step = cms.Path(process.pgen)
process.simulation_step = cms.Path(process.psim)
process.genfiltersummary_step = cms.EndPath(process.genFilterSummary)
process.dqm_step = cms.Path(process.timeCalib)
process.DQMoutput_step = cms.EndPath(process.DQMoutput)
process.endjob_step = cms.EndPath(process.endOfProcess)
process.schedule = cms.Schedule(process.generation_step, process.genfiltersummary_step, process.simulation_step,
                                process.dqm_step, process.DQMoutput_step, process.endjob_step)
# The gun filter must run before every step, as cmsDriver does it.
for path in process.paths:
    getattr(process, path).insert(0, process.ProductionFilterSequence)
