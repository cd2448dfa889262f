#ifndef SimTracker_SiPhase2TimingCalibration_OuterTrackerSimHits_h
#define SimTracker_SiPhase2TimingCalibration_OuterTrackerSimHits_h

// Reading the Outer Tracker sim hits, shared by Phase2TrackerBXHistogram and SimHitDumper so
// that a sim-hit dump holds exactly the per-hit quantities the analyzer computes (physics.md
// section 1, in the deployed float precision).

#include "SimTracker/SiPhase2TimingCalibration/interface/CBCTimingModel.h"

#include "DataFormats/DetId/interface/DetId.h"
#include "DataFormats/GeometryVector/interface/GlobalPoint.h"
#include "DataFormats/SiStripDetId/interface/StripSubdetector.h"
#include "FWCore/Framework/interface/ConsumesCollector.h"
#include "FWCore/Framework/interface/Event.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ParameterSet/interface/ParameterSetDescription.h"
#include "FWCore/Utilities/interface/InputTag.h"
#include "Geometry/CommonDetUnit/interface/GeomDet.h"
#include "Geometry/TrackerGeometryBuilder/interface/TrackerGeometry.h"
#include "SimDataFormats/CrossingFrame/interface/CrossingFrame.h"
#include "SimDataFormats/CrossingFrame/interface/MixCollection.h"
#include "SimDataFormats/Track/interface/SimTrackContainer.h"
#include "SimDataFormats/TrackingHit/interface/PSimHitContainer.h"

#include "CLHEP/Units/GlobalPhysicalConstants.h"
#include "CLHEP/Units/GlobalSystemOfUnits.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ot_simhits {

  // One Outer Tracker sim hit, as the analyzer sees it before selection and smearing.
  struct HitInfo {
    uint32_t module;    // DetId raw id
    int subdet;         // DetId::subdetId(): 5 = TOB (OT barrel), 4 = TID (OT endcap disks)
    bool barrel;        // subdet == TOB: selects the barrel threshold and smearing
    bool twoS;          // TrackerGeometry::getDetectorType() == Ph2SS: a 2S module (CBC readout)
    int bunchCrossing;  // EncodedEventId::bunchCrossing()
    int trackId;
    float pt;      // GeV, of the SimTrack of the same (event, track id); 0 if not found
    float dz;      // z_entry - z_exit (cm), local frame as in the deployed analyzer
    float r;       // cm, global
    float z;       // cm, global
    float toa;     // ns: time of flight - |global position| / c
    float charge;  // electrons: energy loss / 3.61e-9 GeV
  };

  // What forEachHit() saw: Outer Tracker hits, and those dropped because the job's tracker
  // geometry has no module for their DetId (the geometry does not match the GEN-SIM input).
  struct HitCounts {
    unsigned long long outerTracker = 0;
    unsigned long long noGeometry = 0;
  };

  // The hit and track collections: signal only (g4SimHits) or mixed with pile-up (mix).
  class Sources {
  public:
    // The parameters read by the constructor, with the defaults of the cfi.
    static void fillDescription(edm::ParameterSetDescription& desc) {
      const std::vector<std::string> collections = {
          "TrackerHitsTOBLowTof", "TrackerHitsTOBHighTof", "TrackerHitsTIDLowTof", "TrackerHitsTIDHighTof"};
      std::vector<edm::InputTag> signal, mixed;
      for (const auto& collection : collections) {
        signal.emplace_back("g4SimHits", collection);
        mixed.emplace_back("mix", "g4SimHits" + collection);
      }
      desc.add<edm::InputTag>("SimTrackSource", edm::InputTag("g4SimHits"));
      desc.add<bool>("UseMixing", false)
          ->setComment("read the mixing module's crossing frames (pile-up) instead of the signal-only hits");
      desc.add<std::vector<edm::InputTag>>("PSimHitSource", signal);
      desc.add<std::vector<edm::InputTag>>("MixPSimHitSource", mixed);
    }

    Sources(const edm::ParameterSet& config, edm::ConsumesCollector iC)
        : useMixing_(config.getParameter<bool>("UseMixing")) {
      const edm::InputTag simTrackTag = config.getParameter<edm::InputTag>("SimTrackSource");
      if (useMixing_) {
        // Pile-up tracks only exist in the mixing module's crossing frame
        // (mix.mixObjects.mixTracks.makeCrossingFrame = True in the cfg).
        mixSimTrackToken_ = iC.consumes<CrossingFrame<SimTrack>>(edm::InputTag("mix", simTrackTag.label()));
        for (const auto& tag : config.getParameter<std::vector<edm::InputTag>>("MixPSimHitSource"))
          mixSimHitTokens_.push_back(iC.consumes<CrossingFrame<PSimHit>>(tag));
      } else {
        simTrackToken_ = iC.consumes<edm::SimTrackContainer>(simTrackTag);
        for (const auto& tag : config.getParameter<std::vector<edm::InputTag>>("PSimHitSource"))
          simHitTokens_.push_back(iC.consumes<edm::PSimHitContainer>(tag));
      }
    }

    // Calls f(const HitInfo&) for every Outer Tracker hit of the event that has a geometry;
    // returns how many Outer Tracker hits there were and how many had no geometry.
    template <class F>
    HitCounts forEachHit(const edm::Event& iEvent, const TrackerGeometry& geometry, F&& f) const {
      const std::map<TrackKey, float> pts = trackPts(iEvent);
      HitCounts counts;
      auto visit = [&](const PSimHit& hit) {
        HitInfo info;
        switch (describe(hit, geometry, pts, info)) {
          case Described::Hit:
            counts.outerTracker++;
            f(info);
            break;
          case Described::NoGeometry:
            counts.outerTracker++;
            counts.noGeometry++;
            break;
          case Described::NotOuterTracker:
            break;
        }
      };
      if (useMixing_) {
        for (const auto& token : mixSimHitTokens_) {
          edm::Handle<CrossingFrame<PSimHit>> frame;
          if (!iEvent.getByToken(token, frame) || !frame.isValid())
            continue;
          MixCollection<PSimHit> hits(frame.product());
          for (auto it = hits.begin(); it != hits.end(); ++it)
            visit(*it);
        }
      } else {
        for (const auto& token : simHitTokens_) {
          edm::Handle<edm::PSimHitContainer> hits;
          if (!iEvent.getByToken(token, hits) || !hits.isValid())
            continue;
          for (const PSimHit& hit : *hits)
            visit(hit);
        }
      }
      return counts;
    }

  private:
    enum class Described { Hit, NoGeometry, NotOuterTracker };

    using TrackKey = std::pair<uint32_t, unsigned int>;  // (EncodedEventId raw, track id)

    std::map<TrackKey, float> trackPts(const edm::Event& iEvent) const {
      std::map<TrackKey, float> pts;
      auto add = [&pts](const SimTrack& track) {
        pts.emplace(TrackKey(track.eventId().rawId(), track.trackId()), track.momentum().Pt());
      };
      if (useMixing_) {
        edm::Handle<CrossingFrame<SimTrack>> frame;
        if (iEvent.getByToken(mixSimTrackToken_, frame) && frame.isValid()) {
          MixCollection<SimTrack> tracks(frame.product());
          for (auto it = tracks.begin(); it != tracks.end(); ++it)
            add(*it);
        }
      } else {
        edm::Handle<edm::SimTrackContainer> tracks;
        if (iEvent.getByToken(simTrackToken_, tracks) && tracks.isValid())
          for (const SimTrack& track : *tracks)
            add(track);
      }
      return pts;
    }

    static Described describe(const PSimHit& hit, const TrackerGeometry& geometry, const std::map<TrackKey, float>& pts,
                         HitInfo& info) {
      constexpr double kLightSpeedCmPerNs = CLHEP::c_light * CLHEP::ns / CLHEP::cm;
      const DetId detId(hit.detUnitId());
      // Outer Tracker modules: barrel (TOB) and endcap disks (TID) in the Phase-2 numbering.
      if (detId.det() != DetId::Tracker ||
          (detId.subdetId() != StripSubdetector::TOB && detId.subdetId() != StripSubdetector::TID))
        return Described::NotOuterTracker;
      const GeomDet* geomDet = geometry.idToDet(detId);
      if (geomDet == nullptr)
        return Described::NoGeometry;
      const GlobalPoint position = geomDet->surface().toGlobal(hit.localPosition());
      const auto pt = pts.find(TrackKey(hit.eventId().rawId(), hit.trackId()));

      info.module = detId.rawId();
      info.subdet = detId.subdetId();
      info.barrel = detId.subdetId() == StripSubdetector::TOB;
      info.twoS = geometry.getDetectorType(detId) == TrackerGeometry::ModuleType::Ph2SS;
      info.bunchCrossing = hit.eventId().bunchCrossing();
      info.trackId = hit.trackId();
      info.pt = pt == pts.end() ? 0.f : pt->second;
      info.dz = hit.entryPoint().z() - hit.exitPoint().z();
      info.r = std::hypot(position.x(), position.y());
      info.z = position.z();
      const float timeToModule = position.mag() / kLightSpeedCmPerNs;
      info.toa = hit.timeOfFlight() - timeToModule;
      info.charge = hit.energyLoss() / cbc_timing::kGeVPerElectron;
      return Described::Hit;
    }

    const bool useMixing_;
    edm::EDGetTokenT<edm::SimTrackContainer> simTrackToken_;
    edm::EDGetTokenT<CrossingFrame<SimTrack>> mixSimTrackToken_;
    std::vector<edm::EDGetTokenT<edm::PSimHitContainer>> simHitTokens_;
    std::vector<edm::EDGetTokenT<CrossingFrame<PSimHit>>> mixSimHitTokens_;
  };

}  // namespace ot_simhits

#endif
