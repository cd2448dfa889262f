// -*- C++ -*-
//
// Package:    SimTracker/SiPhase2TimingCalibration
// Class:      SimHitDumper
//
// Writes every Outer Tracker sim hit of the job to a flat TTree, so that threshold, smearing,
// delay and selection scans can be rerun without CMSSW (the cbcsim production script reads
// the tree).  No selection here: the reader applies physics.md section 1 with its own cut
// values.  The per-hit quantities come from OuterTrackerSimHits.h, the code the
// Phase2TrackerBXHistogram analyzer uses, so a dump reproduces what the analyzer sees.
//
// Tree "simhits", one entry per hit:
//   charge (float, electrons)  toa (float, ns)   module (uint32, DetId raw id)
//   r, z (float, cm, global)   pt (float, GeV, of the hit's SimTrack; 0 if not found)
//   bx (int, bunch crossing of the hit's event)   track (int, Geant track id)
//   dz (float, z_entry - z_exit, cm)              subdet (int, DetId::subdetId(): 5 = TOB,
//                                                 the OT barrel; 4 = TID, the OT endcap disks)
//
// Hits whose DetId the job's geometry does not have (TrackerGeometry::idToDet throws
// WrongTrackerSubDet) cannot be placed (r, z) and are not written; their number is reported at
// the end of the job (LogWarning), and the job fails when that was every hit (a geometry that
// does not match the GEN-SIM input) or when it read no Outer Tracker hit at all (the message
// names the collections read).  The end-of-job summary is LogPrint, which the default
// MessageLogger shows.

#include "OuterTrackerSimHits.h"

#include "CommonTools/UtilAlgos/interface/TFileService.h"
#include "FWCore/Framework/interface/Event.h"
#include "FWCore/Framework/interface/EventSetup.h"
#include "FWCore/Framework/interface/MakerMacros.h"
#include "FWCore/Framework/interface/one/EDAnalyzer.h"
#include "FWCore/MessageLogger/interface/MessageLogger.h"
#include "FWCore/ParameterSet/interface/ConfigurationDescriptions.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ParameterSet/interface/ParameterSetDescription.h"
#include "FWCore/ServiceRegistry/interface/Service.h"
#include "FWCore/Utilities/interface/ESGetToken.h"
#include "FWCore/Utilities/interface/ESInputTag.h"
#include "FWCore/Utilities/interface/Exception.h"
#include "Geometry/Records/interface/TrackerDigiGeometryRecord.h"
#include "Geometry/TrackerGeometryBuilder/interface/TrackerGeometry.h"

#include "TTree.h"

#include <cstdint>
#include <string>

class SimHitDumper : public edm::one::EDAnalyzer<edm::one::SharedResources> {
public:
  explicit SimHitDumper(const edm::ParameterSet& config);
  static void fillDescriptions(edm::ConfigurationDescriptions& descriptions);
  void analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) override;
  void endJob() override;

private:
  ot_simhits::JobTally tally_;  // a one-module: one instance, one event at a time
  const ot_simhits::Sources sources_;
  const edm::ESGetToken<TrackerGeometry, TrackerDigiGeometryRecord> geomToken_;

  TTree* tree_;
  float charge_ = 0, toa_ = 0, r_ = 0, z_ = 0, pt_ = 0, dz_ = 0;
  uint32_t module_ = 0;
  int bx_ = 0, track_ = 0, subdet_ = 0;
};

SimHitDumper::SimHitDumper(const edm::ParameterSet& config)
    : sources_(config, consumesCollector()),
      geomToken_(esConsumes<TrackerGeometry, TrackerDigiGeometryRecord>(
          edm::ESInputTag("", config.getParameter<std::string>("GeometryType")))) {
  usesResource(TFileService::kSharedResource);
  edm::Service<TFileService> fs;
  tree_ = fs->make<TTree>("simhits", "Outer Tracker sim hits (timecal sim-hit dump)");
  tree_->Branch("charge", &charge_, "charge/F");
  tree_->Branch("toa", &toa_, "toa/F");
  tree_->Branch("module", &module_, "module/i");
  tree_->Branch("r", &r_, "r/F");
  tree_->Branch("z", &z_, "z/F");
  tree_->Branch("pt", &pt_, "pt/F");
  tree_->Branch("bx", &bx_, "bx/I");
  tree_->Branch("track", &track_, "track/I");
  tree_->Branch("dz", &dz_, "dz/F");
  tree_->Branch("subdet", &subdet_, "subdet/I");
}

void SimHitDumper::fillDescriptions(edm::ConfigurationDescriptions& descriptions) {
  edm::ParameterSetDescription desc;
  desc.add<std::string>("GeometryType", "idealForDigi");
  ot_simhits::Sources::fillDescription(desc);
  descriptions.addWithDefaultLabel(desc);
}

void SimHitDumper::analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) {
  const auto fill = [this](const ot_simhits::HitInfo& hit) {
    charge_ = hit.charge;
    toa_ = hit.toa;
    module_ = hit.module;
    r_ = hit.r;
    z_ = hit.z;
    pt_ = hit.pt;
    bx_ = hit.bunchCrossing;
    track_ = hit.trackId;
    dz_ = hit.dz;
    subdet_ = hit.subdet;
    tree_->Fill();
  };
  const ot_simhits::HitCounts counts = sources_.forEachHit(iEvent, iSetup.getData(geomToken_), fill);
  tally_.events++;
  tally_.outerTracker += counts.outerTracker;
  tally_.noGeometry += counts.noGeometry;
  if (tally_.firstUnknownMessage.empty() && counts.noGeometry > 0) {
    tally_.firstUnknownDetId = counts.firstUnknownDetId;
    tally_.firstUnknownMessage = counts.firstUnknownMessage;
  }
}

void SimHitDumper::endJob() {
  edm::LogPrint("SimHitDumper") << "SimHitDumper summary: " << tally_.events << " events, " << tally_.outerTracker
                                << " Outer Tracker sim hits, " << tally_.outerTracker - tally_.noGeometry
                                << " written, " << tally_.noGeometry << " not in the geometry";
  const std::string dropped = ot_simhits::droppedHitsWarning("SimHitDumper", tally_);
  if (!dropped.empty())
    edm::LogWarning("SimHitDumper") << dropped;
  ot_simhits::failIfNothingUsable("SimHitDumper", tally_, sources_);
}

DEFINE_FWK_MODULE(SimHitDumper);
