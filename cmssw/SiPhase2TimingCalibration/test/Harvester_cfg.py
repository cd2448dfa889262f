"""Harvesting of a raw BX-histogram file (DQMIO) into the DQM ROOT layout.

    cmsRun Harvester_cfg.py input=BXHistScan_..._raw.root

Writes DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root in the working directory, with
the histograms under DQMData/Run 1/Ph2TkBXHist/Run summary/{Hist1D,Hist2D}; rename it (the
timecal production scripts rename it to the raw name with 'raw' -> 'harvested').
"""
from FWCore.ParameterSet.VarParsing import VarParsing

options = VarParsing('analysis')
options.register('input', '', VarParsing.multiplicity.singleton, VarParsing.varType.string,
                 "Raw file written by PUCalibration_cfg.py or PythiaGunCalibration_cfg.py")
options.parseArguments()

if not options.input:
    raise RuntimeError("give input=<BXHist..._raw.root written by the production step>")

import FWCore.ParameterSet.Config as cms

process = cms.Process('HARVESTING')

process.load('Configuration.StandardSequences.Services_cff')
process.load('FWCore.MessageService.MessageLogger_cfi')
process.load('DQMServices.Core.DQMStoreNonLegacy_cff')
process.load('Configuration.StandardSequences.DQMSaverAtRunEnd_cff')

process.maxEvents = cms.untracked.PSet(input=cms.untracked.int32(-1))

name = options.input
process.source = cms.Source("DQMRootSource",
    fileNames=cms.untracked.vstring(name if name.startswith(('file:', 'root:')) else 'file:' + name),
)
process.options = cms.untracked.PSet(fileMode=cms.untracked.string('FULLMERGE'))

# Fixed workflow name: the file is always DQM_V0001_R000000001__Global__CMSSW_X_Y_Z__RECO.root.
process.dqmSaver.workflow = '/Global/CMSSW_X_Y_Z/RECO'
process.dqmSaver.convention = 'Offline'

process.dqmsave_step = cms.Path(process.DQMSaver)
process.schedule = cms.Schedule(process.dqmsave_step)
