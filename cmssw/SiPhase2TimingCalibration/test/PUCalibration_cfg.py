"""BX histograms of ttbar + pile-up events: the production step of the timing calibration.

    cmsRun PUCalibration_cfg.py N=1 threshold=5800 pileup=200 HSfile=hs.txt PUfile=pu.txt

HSfile / PUfile are text files listing GEN-SIM files (one per line, 'file:' optional).
Writes the DQMIO file BXHist..._raw.root (name: physics.md section 6) in the working
directory; Harvester_cfg.py turns it into the harvested histograms.
"""
import random

from FWCore.ParameterSet.VarParsing import VarParsing

options = VarParsing('analysis')
options.register('N', 1, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Number of events to be processed")
options.register('pileup', 200, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Mean number of minimum-bias events mixed in as pile-up")
options.register('pt', 2., VarParsing.multiplicity.singleton, VarParsing.varType.float,
                 "Minimum pT of the track of a hit (GeV)")
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
options.register('verbose', 0, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "0 (end-of-job summary) | 1 (+ configuration, a line per event) | 2 (+ a line per hit) | "
                 "3 (+ the BXs each hit fired at each delay)")
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
options.register('HSfile', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Text file listing the hard-scattering GEN-SIM files")
options.register('PUfile', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Text file listing the pile-up (minimum-bias) GEN-SIM files")
options.parseArguments()

import FWCore.ParameterSet.Config as cms
from SimTracker.SiPhase2TimingCalibration.releaseConditions import choose

# Geometry, era and global tag follow the release unless given (releaseConditions.py).
geometry, era, era_name, globaltag, geometry_fragments = choose(options.geometry, options.era, options.globaltag)
print("Geometry %s, era %s, global tag %s" % (geometry, era_name, globaltag))

SUBDETS = ('ALL', 'BLL', 'BLH', 'BHL', 'BHH', 'ELL', 'ELH', 'EHL', 'EHH')
if not 0 <= options.verbose <= 3:
    raise RuntimeError("verbose=%s not understood (allowed: 0, 1, 2, 3)" % options.verbose)
if options.mode not in ('scan', 'emulate'):
    raise RuntimeError("mode=%s not understood (allowed: scan, emulate)" % options.mode)
if options.subdet not in SUBDETS:
    raise RuntimeError("subdet=%s not understood (allowed: %s)" % (options.subdet, ' '.join(SUBDETS)))
if options.smearingkey not in ('module', 'sensor'):
    raise RuntimeError("smearingkey=%s not understood (allowed: module, sensor)" % options.smearingkey)
if not 0 <= options.smearingseed < 2**32:
    raise RuntimeError("smearingseed=%s: give 1..4294967295, or 0 to draw one" % options.smearingseed)
# The offsets are a function of (seed, module): the same in every stream and thread.
smearing_seed = options.smearingseed or random.randrange(1, 2**32)
print("Smearing seed %d" % smearing_seed)


def output_name(opts, delay=None):
    """physics.md section 6: the parameters in the name, '.' -> 'p', suffix _raw.root."""
    stem = 'subdet_{}_N_{}_pileup_{}_pt_{:.1f}_threshold_{}_thresholdsmearing_{:.1f}_tofsmearing_{:.1f}'.format(
        opts.subdet, opts.N, opts.pileup, opts.pt, int(opts.threshold), opts.thresholdsmearing, opts.tofsmearing)
    head = 'BXHistScan_' if delay is None else 'BXHistEmulateDelay_{:.2f}_'.format(delay)
    return (head + stem).replace('.', 'p') + '_raw.root'


def get_files(path, label):
    import os
    if not path:
        raise RuntimeError('give %sfile=<text file listing the %s GEN-SIM files>' % (label, label))
    if not os.path.exists(path):
        raise RuntimeError('%sfile=%s does not exist' % (label, path))
    names = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                names.append(line if line.startswith(('file:', 'root:', '/store')) else 'file:' + line)
    if not names:
        raise RuntimeError('%sfile=%s lists no file' % (label, path))
    return cms.untracked.vstring(*names)


offset_emulate = None
if options.mode == 'emulate':
    if options.offset < 0 and options.offset != -1.:
        raise RuntimeError("offset=%s: give a delay >= 0 (ns), or -1 to draw one" % options.offset)
    # Drawn on the 0.01 ns grid of [0, 50) so the value in the file name is the value used.
    offset_emulate = random.randrange(5000) / 100. if options.offset == -1. else round(options.offset, 2)
filename = output_name(options, offset_emulate)
print("Producing file %s" % filename)

process = cms.Process('BXHIST', era)

process.load('Configuration.StandardSequences.Services_cff')
process.load('SimGeneral.HepPDTESSource.pythiapdt_cfi')
process.load('FWCore.MessageService.MessageLogger_cfi')
process.load('Configuration.EventContent.EventContent_cff')
process.load('SimGeneral.MixingModule.mix_POISSON_average_cfi')
for fragment in geometry_fragments:
    process.load(fragment)
process.load('Configuration.StandardSequences.MagneticField_cff')
process.load('Configuration.StandardSequences.EndOfProcess_cff')
process.load('Configuration.StandardSequences.FrontierConditions_GlobalTag_cff')
process.load('DQMServices.Core.DQMStoreNonLegacy_cff')

from Configuration.AlCa.GlobalTag import GlobalTag
process.GlobalTag = GlobalTag(process.GlobalTag, globaltag, '')

process.maxEvents = cms.untracked.PSet(input=cms.untracked.int32(options.N))

process.source = cms.Source("PoolSource",
    dropDescendantsOfDroppedBranches=cms.untracked.bool(False),
    fileNames=get_files(options.HSfile, 'HS'),
    inputCommands=cms.untracked.vstring('keep *', 'drop *_genParticles_*_*', 'drop *_*GenJets*_*_*',
                                        'drop *_genMet*_*_*', 'drop *_genCandidatesForMET_*_*'),
    secondaryFileNames=cms.untracked.vstring(),
)

# Pile-up mixed into the in-time bunch crossing only: the analyzer discards hits of other
# crossings (bx = 0 selection, physics.md section 1) and evaluates the BX windows -5..+5 of
# each in-time hit itself.
process.mix.input.nbPileupEvents.averageNumber = cms.double(options.pileup)
process.mix.bunchspace = cms.int32(25)
process.mix.minBunch = cms.int32(0)
process.mix.maxBunch = cms.int32(0)
process.mix.input.fileNames = get_files(options.PUfile, 'PU')
process.mix.mixObjects.mixSH.crossingFrames.extend([
    'TrackerHitsTIDHighTof', 'TrackerHitsTIDLowTof', 'TrackerHitsTOBHighTof', 'TrackerHitsTOBLowTof',
])
# The pT of pile-up tracks: the analyzer reads the SimTracks of the crossing frame.
process.mix.mixObjects.mixTracks.makeCrossingFrame = cms.untracked.bool(True)
# Only the crossing frames are used: no digitization. The EDAliases that digitizers_cfi.py
# loads (simSiPixelDigis, simEcalUnsuppressedDigis, ...) point at digitizer products of mix:
# with no digitizer they would stop cmsRun at start-up ("EDAlias parameter set mismatch",
# FWCore/Framework/src/processEDAliases.cc), so they go too, as every cmsDriver configuration
# that empties the digitizers does (Configuration/Applications/python/ConfigBuilder.py).
process.mix.digitizers = cms.PSet()
for a in process.aliases: delattr(process, a)

process.load('SimTracker.SiPhase2TimingCalibration.Phase2TrackerBXHistogram_cfi')
process.timeCalib.UseMixing = cms.bool(True)
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

process.RandomNumberGeneratorService.mix.initialSeed = cms.untracked.uint32(random.randrange(1, 10**8))

process.DQMoutput = cms.OutputModule("DQMRootOutputModule",
    dataset=cms.untracked.PSet(dataTier=cms.untracked.string('DQMIO'), filterName=cms.untracked.string('')),
    fileName=cms.untracked.string('file:' + filename),
    outputCommands=process.DQMEventContent.outputCommands,
    splitLevel=cms.untracked.int32(0),
)

process.mix_step = cms.Path(process.mix)
process.dqm_step = cms.Path(process.timeCalib)
process.DQMoutput_step = cms.EndPath(process.DQMoutput)
process.endjob_step = cms.EndPath(process.endOfProcess)
process.schedule = cms.Schedule(process.mix_step, process.dqm_step, process.DQMoutput_step, process.endjob_step)
