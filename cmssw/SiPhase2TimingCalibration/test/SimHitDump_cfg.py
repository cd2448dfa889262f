"""One expensive CMSSW pass that dumps the Outer Tracker sim hits to a flat TTree.

    cmsRun SimHitDump_cfg.py N=100 pileup=200 HSfile=hs.txt PUfile=pu.txt output=simhits.root

The dump (tree 'simhits', one entry per hit: charge toa module r z pt bx track dz subdet) is
read by the cbcsim production script, which then rescans thresholds, smearings and delays
without CMSSW. No selection is applied here: the pT, delta-ray, BX and region cuts of
physics.md section 1 are applied by the reader, so one dump serves every cut value.
"""
import random

from FWCore.ParameterSet.VarParsing import VarParsing

options = VarParsing('analysis')
options.register('N', 1, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Number of events to be processed")
options.register('pileup', 200, VarParsing.multiplicity.singleton, VarParsing.varType.int,
                 "Mean number of minimum-bias events mixed in as pile-up")
options.register('HSfile', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Text file listing the hard-scattering GEN-SIM files")
options.register('PUfile', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Text file listing the pile-up (minimum-bias) GEN-SIM files")
options.register('geometry', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Phase-2 geometry scenario of the GEN-SIM input, e.g. 2026D88 or Run4D110 "
                 "(default: D88 where the release has it, i.e. 12_5-14_0, else D110)")
options.register('era', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Era (default: the one the release's upgrade workflows use with the geometry)")
options.register('globaltag', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Global tag (default: the one the release's upgrade workflows use with the geometry)")
options.register('output', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Output ROOT file (default SimHitDump_N_<N>_pileup_<pileup>.root)")
options.parseArguments()

import FWCore.ParameterSet.Config as cms
from SimTracker.SiPhase2TimingCalibration.releaseConditions import choose

# Geometry, era and global tag follow the release unless given (releaseConditions.py).
geometry, era, era_name, globaltag, geometry_fragments = choose(options.geometry, options.era, options.globaltag)
print("Geometry %s, era %s, global tag %s" % (geometry, era_name, globaltag))


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


output = options.output or 'SimHitDump_N_{}_pileup_{}.root'.format(options.N, options.pileup)
print("Producing file %s" % output)

process = cms.Process('SIMHITDUMP', era)

process.load('Configuration.StandardSequences.Services_cff')
process.load('SimGeneral.HepPDTESSource.pythiapdt_cfi')
process.load('FWCore.MessageService.MessageLogger_cfi')
process.load('SimGeneral.MixingModule.mix_POISSON_average_cfi')
for fragment in geometry_fragments:
    process.load(fragment)
process.load('Configuration.StandardSequences.MagneticField_cff')
process.load('Configuration.StandardSequences.EndOfProcess_cff')
process.load('Configuration.StandardSequences.FrontierConditions_GlobalTag_cff')

from Configuration.AlCa.GlobalTag import GlobalTag
process.GlobalTag = GlobalTag(process.GlobalTag, globaltag, '')

process.maxEvents = cms.untracked.PSet(input=cms.untracked.int32(options.N))
process.source = cms.Source("PoolSource",
    dropDescendantsOfDroppedBranches=cms.untracked.bool(False),
    fileNames=get_files(options.HSfile, 'HS'),
    inputCommands=cms.untracked.vstring('keep *', 'drop *_genParticles_*_*', 'drop *_*GenJets*_*_*'),
    secondaryFileNames=cms.untracked.vstring(),
)

process.mix.input.nbPileupEvents.averageNumber = cms.double(options.pileup)
process.mix.bunchspace = cms.int32(25)
process.mix.minBunch = cms.int32(0)
process.mix.maxBunch = cms.int32(0)
process.mix.input.fileNames = get_files(options.PUfile, 'PU')
process.mix.mixObjects.mixSH.crossingFrames.extend([
    'TrackerHitsTIDHighTof', 'TrackerHitsTIDLowTof', 'TrackerHitsTOBHighTof', 'TrackerHitsTOBLowTof',
])
# The pT of pile-up tracks: the dumper reads the SimTracks of the crossing frame.
process.mix.mixObjects.mixTracks.makeCrossingFrame = cms.untracked.bool(True)
# Only the crossing frames are used: no digitization. The EDAliases that digitizers_cfi.py
# loads (simSiPixelDigis, simEcalUnsuppressedDigis, ...) point at digitizer products of mix:
# with no digitizer they would stop cmsRun at start-up ("EDAlias parameter set mismatch",
# FWCore/Framework/src/processEDAliases.cc), so they go too, as every cmsDriver configuration
# that empties the digitizers does (Configuration/Applications/python/ConfigBuilder.py).
process.mix.digitizers = cms.PSet()
for a in process.aliases: delattr(process, a)
process.RandomNumberGeneratorService.mix.initialSeed = cms.untracked.uint32(random.randrange(1, 10**8))

_otHitCollections = ['TrackerHitsTOBLowTof', 'TrackerHitsTOBHighTof',
                     'TrackerHitsTIDLowTof', 'TrackerHitsTIDHighTof']
process.simHitDumper = cms.EDAnalyzer('SimHitDumper',
    GeometryType=cms.string('idealForDigi'),
    SimTrackSource=cms.InputTag('g4SimHits'),
    UseMixing=cms.bool(True),
    PSimHitSource=cms.VInputTag(*[cms.InputTag('g4SimHits', c) for c in _otHitCollections]),
    MixPSimHitSource=cms.VInputTag(*[cms.InputTag('mix', 'g4SimHits' + c) for c in _otHitCollections]),
)
process.TFileService = cms.Service("TFileService", fileName=cms.string(output))

process.mix_step = cms.Path(process.mix)
process.dump_step = cms.Path(process.simHitDumper)
process.endjob_step = cms.EndPath(process.endOfProcess)
process.schedule = cms.Schedule(process.mix_step, process.dump_step, process.endjob_step)
