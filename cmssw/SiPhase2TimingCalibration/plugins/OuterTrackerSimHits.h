#ifndef SimTracker_SiPhase2TimingCalibration_OuterTrackerSimHits_h
#define SimTracker_SiPhase2TimingCalibration_OuterTrackerSimHits_h

// Reading the Outer Tracker sim hits, shared by Phase2TrackerBXHistogram and SimHitDumper so
// that a sim-hit dump holds exactly the per-hit quantities the analyzer computes (physics.md
// section 1, in the deployed float precision).
//
// Two framework behaviours shape it:
// - a configured collection that is not in the event is an error, not an empty collection:
//   Event::get throws ProductNotFound (FWCore/Framework/interface/Event.h), so a wrong
//   crossing-frame or hit label stops the job at its first event instead of giving an empty
//   scan;
// - TrackerGeometry::idToDet throws cms::Exception("WrongTrackerSubDet") for a DetId the
//   geometry does not have (Geometry/TrackerGeometryBuilder/src/TrackerGeometry.cc); it
//   never returns nullptr.  A hit on such a DetId (GEN-SIM made with another geometry) is
//   caught here, counted and skipped, and the plugins report the count at the end of the
//   job (and fail when no hit could be placed).  Any other exception propagates.

#include "SimTracker/SiPhase2TimingCalibration/interface/CBCTimingModel.h"

#include "DataFormats/DetId/interface/DetId.h"
#include "DataFormats/GeometryVector/interface/GlobalPoint.h"
#include "DataFormats/SiStripDetId/interface/StripSubdetector.h"
#include "FWCore/Framework/interface/ConsumesCollector.h"
#include "FWCore/Framework/interface/Event.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ParameterSet/interface/ParameterSetDescription.h"
#include "FWCore/Utilities/interface/Exception.h"
#include "FWCore/Utilities/interface/InputTag.h"
#include "Geometry/CommonDetUnit/interface/GeomDet.h"
#include "Geometry/TrackerGeometryBuilder/interface/TrackerGeometry.h"
#include "SimDataFormats/CrossingFrame/interface/CrossingFrame.h"
#include "SimDataFormats/CrossingFrame/interface/MixCollection.h"
#include "SimDataFormats/Track/interface/SimTrackContainer.h"
#include "SimDataFormats/TrackingHit/interface/PSimHitContainer.h"

// The namespaced headers: CLHEP's Global*.h add `using namespace CLHEP;` to every file that
// includes this one.
#include "CLHEP/Units/PhysicalConstants.h"
#include "CLHEP/Units/SystemOfUnits.h"

#include <cctype>
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

  // What forEachHit() saw: Outer Tracker hits, and those whose DetId the job's tracker
  // geometry does not have (idToDet threw WrongTrackerSubDet), with the first such DetId.
  struct HitCounts {
    unsigned long long outerTracker = 0;
    unsigned long long noGeometry = 0;
    uint32_t firstUnknownDetId = 0;
    std::string firstUnknownMessage;  // the geometry's own message for it
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
      const auto signalTags = config.getParameter<std::vector<edm::InputTag>>("PSimHitSource");
      const auto mixedTags = config.getParameter<std::vector<edm::InputTag>>("MixPSimHitSource");
      const std::vector<edm::InputTag>& hitTags = useMixing_ ? mixedTags : signalTags;
      for (const auto& tag : hitTags)
        hitCollections_ += (hitCollections_.empty() ? "" : ", ") + tag.encode();
      if (useMixing_) {
        // Pile-up tracks only exist in the mixing module's crossing frame
        // (mix.mixObjects.mixTracks.makeCrossingFrame = True in the cfg).
        const edm::InputTag frameTag("mix", simTrackTag.label());
        mixSimTrackToken_ = iC.consumes<CrossingFrame<SimTrack>>(frameTag);
        for (const auto& tag : hitTags)
          mixSimHitTokens_.push_back(iC.consumes<CrossingFrame<PSimHit>>(tag));
        trackCollection_ = frameTag.encode();
      } else {
        simTrackToken_ = iC.consumes<edm::SimTrackContainer>(simTrackTag);
        for (const auto& tag : hitTags)
          simHitTokens_.push_back(iC.consumes<edm::PSimHitContainer>(tag));
        trackCollection_ = simTrackTag.encode();
      }
    }

    // "label:instance, ..." of the hit collections read, and of the track collection: what a
    // report about missing hits names.
    const std::string& hitCollections() const { return hitCollections_; }
    const std::string& trackCollection() const { return trackCollection_; }
    bool useMixing() const { return useMixing_; }

    // Calls f(const HitInfo&) for every Outer Tracker hit of the event that the geometry
    // can place; returns how many Outer Tracker hits there were and how many it could not.
    // A collection missing from the event throws (ProductNotFound), as Event::get does.
    template <class F>
    HitCounts forEachHit(const edm::Event& iEvent, const TrackerGeometry& geometry, F&& f) const {
      const std::map<TrackKey, float> pts = trackPts(iEvent);
      HitCounts counts;
      auto visit = [&](const PSimHit& hit) {
        HitInfo info;
        switch (describe(hit, geometry, pts, info, counts)) {
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
          MixCollection<PSimHit> hits(&iEvent.get(token));
          for (auto it = hits.begin(); it != hits.end(); ++it)
            visit(*it);
        }
      } else {
        for (const auto& token : simHitTokens_)
          for (const PSimHit& hit : iEvent.get(token))
            visit(hit);
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
        MixCollection<SimTrack> tracks(&iEvent.get(mixSimTrackToken_));
        for (auto it = tracks.begin(); it != tracks.end(); ++it)
          add(*it);
      } else {
        for (const SimTrack& track : iEvent.get(simTrackToken_))
          add(track);
      }
      return pts;
    }

    static Described describe(const PSimHit& hit,
                              const TrackerGeometry& geometry,
                              const std::map<TrackKey, float>& pts,
                              HitInfo& info,
                              HitCounts& counts) {
      // CLHEP::c_light is in mm/ns: 29.98 cm/ns.
      constexpr double kLightSpeedCmPerNs = CLHEP::c_light * CLHEP::ns / CLHEP::cm;
      const DetId detId(hit.detUnitId());
      // Outer Tracker modules: barrel (TOB) and endcap disks (TID) in the Phase-2 numbering.
      if (detId.det() != DetId::Tracker ||
          (detId.subdetId() != StripSubdetector::TOB && detId.subdetId() != StripSubdetector::TID))
        return Described::NotOuterTracker;
      const GeomDet* geomDet = nullptr;
      try {
        geomDet = geometry.idToDet(detId);
      } catch (const cms::Exception& e) {
        if (e.category() != "WrongTrackerSubDet")
          throw;
        if (counts.firstUnknownMessage.empty()) {
          counts.firstUnknownDetId = detId.rawId();
          counts.firstUnknownMessage = e.message();
          while (!counts.firstUnknownMessage.empty() && std::isspace(counts.firstUnknownMessage.back()))
            counts.firstUnknownMessage.pop_back();
        }
        return Described::NoGeometry;
      }
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
    std::string hitCollections_;
    std::string trackCollection_;
    edm::EDGetTokenT<edm::SimTrackContainer> simTrackToken_;
    edm::EDGetTokenT<CrossingFrame<SimTrack>> mixSimTrackToken_;
    std::vector<edm::EDGetTokenT<edm::PSimHitContainer>> simHitTokens_;
    std::vector<edm::EDGetTokenT<CrossingFrame<PSimHit>>> mixSimHitTokens_;
  };

  // The job-level tally of the plugins, and the end-of-job report both give: how many hits
  // were read, how many could not be placed (and the first such DetId), and the failure of
  // a job that saw no Outer Tracker hit or could place none.
  struct JobTally {
    unsigned long long events = 0;
    unsigned long long outerTracker = 0;
    unsigned long long noGeometry = 0;
    uint32_t firstUnknownDetId = 0;
    std::string firstUnknownMessage;
  };

  // The "N of M hits ... dropped" warning text, empty when none was.
  inline std::string droppedHitsWarning(const std::string& who, const JobTally& tally) {
    if (tally.noGeometry == 0)
      return "";
    return who + ": " + std::to_string(tally.noGeometry) + " of " + std::to_string(tally.outerTracker) +
           " Outer Tracker sim hits were dropped: TrackerGeometry::idToDet does not know their DetId (first: " +
           tally.firstUnknownMessage +
           "); the tracker geometry of this job is not the one of the GEN-SIM input (cfg option geometry=)";
  }

  // Throws when the job read events but no Outer Tracker hit, or could place none of them.
  inline void failIfNothingUsable(const std::string& who, const JobTally& tally, const Sources& sources) {
    if (tally.events == 0)
      return;
    if (tally.outerTracker == 0)
      throw cms::Exception("ProductNotFound")
          << who << ": no Outer Tracker sim hit in " << tally.events << " event(s); the hit collections read were "
          << sources.hitCollections() << " (tracks: " << sources.trackCollection() << ")"
          << (sources.useMixing() ? "; with UseMixing the crossing frames must be listed in "
                                    "mix.mixObjects.mixSH.crossingFrames"
                                  : "")
          << ". Check the labels and that the input holds Outer Tracker sim hits.";
    if (tally.noGeometry == tally.outerTracker)
      throw cms::Exception("Configuration")
          << who << ": all " << tally.outerTracker
          << " Outer Tracker sim hits have a DetId the tracker geometry of this job does not have (first: "
          << tally.firstUnknownMessage << "); run with the geometry of the GEN-SIM input (cfg option geometry=)";
  }

}  // namespace ot_simhits

#endif
