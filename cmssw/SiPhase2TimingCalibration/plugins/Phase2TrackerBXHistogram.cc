// -*- C++ -*-
//
// Package:    SimTracker/SiPhase2TimingCalibration
// Class:      Phase2TrackerBXHistogram
//
// BX-assignment histograms of Outer Tracker sim hits as the CBC would see them, for every
// sampling delay of a scan (or one emulated delay).  The detection physics (pulse shape,
// sampled/latched logic, delays, fill conventions) is in interface/CBCTimingModel.h, which
// does not depend on CMSSW so that it is tested bit for bit outside cmsRun; this module only
// selects the hits, applies the per-module smearing and fills the DQM monitor elements.
//
// Threads: a DQMEDAnalyzer is a stream module (one copy per stream).  Nothing here depends
// on which copy sees which event: the per-module offsets are a function of (SmearingSeed,
// module) computed on the fly (interface/ModuleSmearing.h), not draws from a per-stream
// random engine, and all copies fill the same DQM monitor elements.  So 1 thread and 4
// threads give identical histograms, and the job needs no RandomNumberGeneratorService.
//
// Output (physics.md section 6), under TopFolderName (Ph2TkBXHist):
//   Hist1D/BXHistogram{Sampled,Latched}Offset<d>       TH1D(11, -5.5, 5.5), one per delay
//   Hist2D/OffsetScan{Sampled,Latched}                 TH2D bx fill value vs delay
//   Hist2D/HitsTrueNumberScan{Sampled,Latched}         every hit at every bx, vs delay
//   Hist2D/AttributionScan{Sampled,Latched}            number of BXs fired per hit, vs delay
//   Info/SmearingSeed (int), Info/SmearingKey (string) the smearing of the job, to reproduce it
// The histograms are double precision (book1DD/book2DD): a float bin stops counting exactly
// at 2^24 = 16.8 million entries, which a pile-up scan reaches in the HitsTrueNumber maps.
//
// At the end of the job the copies together report how many Outer Tracker hits had no
// module in the job's geometry (LogWarning), and fail the job when that was every hit: a
// geometry that does not match the GEN-SIM input otherwise gives empty histograms silently.

#include "SimTracker/SiPhase2TimingCalibration/interface/CBCTimingModel.h"
#include "SimTracker/SiPhase2TimingCalibration/interface/ModuleSmearing.h"
#include "OuterTrackerSimHits.h"

#include "DQMServices/Core/interface/DQMEDAnalyzer.h"
#include "DQMServices/Core/interface/DQMStore.h"

#include "DataFormats/DetId/interface/DetId.h"
#include "DataFormats/TrackerCommon/interface/TrackerTopology.h"
#include "FWCore/Framework/interface/Event.h"
#include "FWCore/Framework/interface/EventSetup.h"
#include "FWCore/Framework/interface/MakerMacros.h"
#include "FWCore/MessageLogger/interface/MessageLogger.h"
#include "FWCore/ParameterSet/interface/ConfigurationDescriptions.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ParameterSet/interface/ParameterSetDescription.h"
#include "FWCore/Utilities/interface/ESGetToken.h"
#include "FWCore/Utilities/interface/ESInputTag.h"
#include "FWCore/Utilities/interface/Exception.h"

#include "Geometry/Records/interface/TrackerDigiGeometryRecord.h"
#include "Geometry/Records/interface/TrackerTopologyRcd.h"
#include "Geometry/TrackerGeometryBuilder/interface/TrackerGeometry.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

class Phase2TrackerBXHistogram : public DQMEDAnalyzer {
public:
  explicit Phase2TrackerBXHistogram(const edm::ParameterSet&);
  ~Phase2TrackerBXHistogram() override = default;

  static void fillDescriptions(edm::ConfigurationDescriptions& descriptions);

  void bookHistograms(DQMStore::IBooker& ibooker, edm::Run const& iRun, edm::EventSetup const& iSetup) override;
  void analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) override;
  void endStream() override;

private:
  // Hit accounting shared by the stream copies of one module (same label).  The DQM base
  // class owns the module's GlobalCache, so the copies find their common tally by label;
  // the last copy to end reports for the whole job.
  struct HitTally {
    std::atomic<unsigned long long> outerTracker{0};
    std::atomic<unsigned long long> noGeometry{0};
    std::atomic<unsigned long long> notTwoS{0};
    std::atomic<int> openCopies{0};
  };
  static std::shared_ptr<HitTally> hitTallyFor(const std::string& label);

  struct ModePair {
    MonitorElement* sampled = nullptr;
    MonitorElement* latched = nullptr;
  };

  // Receives the header's per-delay, per-BX decisions for one hit and fills the MEs.
  struct MonitorSink {
    Phase2TrackerBXHistogram& module;
    void fire(std::size_t d, int bx, bool sampled, bool latched);
    void attribution(std::size_t d, int nSampled, int nLatched);
  };

  uint32_t smearingKeyOf(const TrackerTopology& topology, uint32_t rawId) const;
  ModePair book2D(DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const;

  const std::string label_;
  const std::string topFolder_;
  const std::string mode_;
  const double offsetMin_;
  const double offsetMax_;
  const double offsetStep_;
  const float thresholdBarrel_;
  const float thresholdEndcap_;
  const cbc_timing::ModuleSmearing smearing_;
  const std::string smearingKeyName_;
  const cbc_timing::SmearingKey smearingKey_;
  const bool only2SModules_;
  const int verbosity_;
  const cbc_timing::HitSelection selection_;
  const cbc_timing::BXScan scan_;

  const ot_simhits::Sources sources_;
  const edm::ESGetToken<TrackerGeometry, TrackerDigiGeometryRecord> geomToken_;
  const edm::ESGetToken<TrackerTopology, TrackerTopologyRcd> topoToken_;
  const std::shared_ptr<HitTally> tally_;

  std::vector<ModePair> bxHistograms_;  // one pair per delay
  ModePair offsetScan_;
  ModePair hitsTrueScan_;
  ModePair attributionScan_;
};

namespace {
  std::vector<double> delaysFor(const edm::ParameterSet& config) {
    const std::string mode = config.getParameter<std::string>("Mode");
    if (mode == "emulate")
      return {config.getParameter<double>("OffsetEmulate")};
    if (mode != "scan")
      throw cms::Exception("Configuration") << "Mode '" << mode << "' not understood (allowed: scan, emulate)";
    return cbc_timing::scanDelays(config.getParameter<double>("OffsetMin"),
                                  config.getParameter<double>("OffsetMax"),
                                  config.getParameter<double>("OffsetStep"));
  }

  cbc_timing::PulseShapeParameters pulseParameters(const std::vector<double>& values) {
    if (values.size() != 6)
      throw cms::Exception("Configuration") << "PulseShapeParameters needs 6 values (delay, tau, r, theta, n, A)";
    cbc_timing::PulseShapeParameters p;
    p.tau = values[1];
    p.r = values[2];
    p.theta = values[3];
    p.nTerms = static_cast<int>(values[4]);
    p.amplitude = values[5];
    return p;  // values[0] (the delay) is set per delay by the scan
  }

  template <class T>
  T checked(const char* what, T (*make)(const std::string&), const std::string& value) {
    try {
      return make(value);
    } catch (const std::invalid_argument& e) {
      throw cms::Exception("Configuration") << what << ": " << e.what();
    }
  }

  cbc_timing::ModuleSmearing smearingFor(const edm::ParameterSet& config) {
    try {
      return cbc_timing::ModuleSmearing(config.getParameter<unsigned int>("SmearingSeed"),
                                        config.getParameter<double>("ThresholdSmearing_Barrel"),
                                        config.getParameter<double>("ThresholdSmearing_Endcap"),
                                        config.getParameter<double>("TOFSmearing"));
    } catch (const std::invalid_argument& e) {
      throw cms::Exception("Configuration") << "ThresholdSmearing_Barrel/_Endcap, TOFSmearing: " << e.what();
    }
  }
}  // namespace

std::shared_ptr<Phase2TrackerBXHistogram::HitTally> Phase2TrackerBXHistogram::hitTallyFor(const std::string& label) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<HitTally>> tallies;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<HitTally> tally = tallies[label].lock();
  if (!tally) {
    tally = std::make_shared<HitTally>();
    tallies[label] = tally;
  }
  tally->openCopies++;
  return tally;
}

Phase2TrackerBXHistogram::Phase2TrackerBXHistogram(const edm::ParameterSet& config)
    : label_(config.getParameter<std::string>("@module_label")),
      topFolder_(config.getParameter<std::string>("TopFolderName")),
      mode_(config.getParameter<std::string>("Mode")),
      offsetMin_(config.getParameter<double>("OffsetMin")),
      offsetMax_(config.getParameter<double>("OffsetMax")),
      offsetStep_(config.getParameter<double>("OffsetStep")),
      thresholdBarrel_(static_cast<float>(config.getParameter<double>("ThresholdInElectrons_Barrel"))),
      thresholdEndcap_(static_cast<float>(config.getParameter<double>("ThresholdInElectrons_Endcap"))),
      smearing_(smearingFor(config)),
      smearingKeyName_(config.getParameter<std::string>("SmearingKey")),
      smearingKey_(checked("SmearingKey", &cbc_timing::parseSmearingKey, smearingKeyName_)),
      only2SModules_(config.getParameter<bool>("Only2SModules")),
      verbosity_(config.getParameter<int>("VerbosityLevel")),
      selection_{config.getParameter<double>("PTCut"),
                 checked("Subdetector", &cbc_timing::regionWindow, config.getParameter<std::string>("Subdetector"))},
      scan_(delaysFor(config),
            checked("Model", &cbc_timing::parseModel, config.getParameter<std::string>("Model")),
            pulseParameters(config.getParameter<std::vector<double>>("PulseShapeParameters"))),
      sources_(config, consumesCollector()),
      geomToken_(esConsumes<TrackerGeometry, TrackerDigiGeometryRecord>(
          edm::ESInputTag("", config.getParameter<std::string>("GeometryType")))),
      topoToken_(esConsumes<TrackerTopology, TrackerTopologyRcd>()),
      tally_(hitTallyFor(label_)) {
  edm::LogInfo("Phase2TrackerBXHistogram")
      << label_ << ": mode " << mode_ << ", model " << cbc_timing::modelName(scan_.model()) << ", "
      << scan_.delays().size() << " delays, threshold barrel/endcap " << thresholdBarrel_ << "/" << thresholdEndcap_
      << " e, smearing barrel/endcap " << config.getParameter<double>("ThresholdSmearing_Barrel") << "/"
      << config.getParameter<double>("ThresholdSmearing_Endcap") << " e, ToF smearing "
      << config.getParameter<double>("TOFSmearing") << " ns, seed " << smearing_.seed() << " keyed by "
      << smearingKeyName_
      << (only2SModules_ ? ", 2S modules only" : ", all modules");
}

void Phase2TrackerBXHistogram::fillDescriptions(edm::ConfigurationDescriptions& descriptions) {
  edm::ParameterSetDescription desc;
  desc.add<std::string>("TopFolderName", "Ph2TkBXHist");
  desc.add<std::string>("GeometryType", "idealForDigi");
  ot_simhits::Sources::fillDescription(desc);
  desc.add<std::string>("Mode", "scan")
      ->setComment("scan: every delay of OffsetMin..OffsetMax by OffsetStep; emulate: OffsetEmulate only");
  desc.add<std::string>("Model", "compat")
      ->setComment("compat reproduces the deployed analyzer bit for bit; exact uses the continuous pulse");
  desc.add<std::string>("Subdetector", "ALL")->setComment("ALL BLL BLH BHL BHH ELL ELH EHL EHH");
  desc.add<double>("PTCut", 2.0);
  desc.add<double>("ThresholdInElectrons_Barrel", 5800.);
  desc.add<double>("ThresholdInElectrons_Endcap", 5800.);
  desc.add<double>("ThresholdSmearing_Barrel", 0.)->setComment("per-module offset, uniform in +-value (electrons)");
  desc.add<double>("ThresholdSmearing_Endcap", 0.)->setComment("per-module offset, uniform in +-value (electrons)");
  desc.add<double>("TOFSmearing", 0.)->setComment("per-module offset, uniform in +-value (ns)");
  desc.add<unsigned int>("SmearingSeed", 1)
      ->setComment("the per-module offsets are a function of (seed, module): same seed, same offsets");
  desc.add<std::string>("SmearingKey", "module")
      ->setComment("module: one offset per module (TrackerTopology::stack); sensor: one per sensor DetId, as the "
                   "deployed analyzer");
  desc.add<bool>("Only2SModules", false)
      ->setComment("apply the CBC model to 2S modules only (PS modules are read out by the SSA/MPA)");
  desc.add<double>("OffsetMin", 0.);
  desc.add<double>("OffsetMax", 50.);
  desc.add<double>("OffsetStep", 0.1);
  desc.add<double>("OffsetEmulate", 0.);
  desc.add<std::vector<double>>("PulseShapeParameters", {0., 16.043703, 99.999857, 40.571650, 2., 1.2459094})
      ->setComment("(delay placeholder, tau, r, theta, n, A) of the CBC3 pulse, physics.md section 2");
  desc.add<int>("VerbosityLevel", 0);
  descriptions.addWithDefaultLabel(desc);
}

Phase2TrackerBXHistogram::ModePair Phase2TrackerBXHistogram::book2D(
    DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const {
  // y: one bin per delay on [min - step/2, max + step/2] (physics.md section 6).
  const int ny = static_cast<int>(scan_.delays().size());
  const double ylow = offsetMin_ - offsetStep_ / 2, yhigh = offsetMax_ + offsetStep_ / 2;
  ModePair pair;
  pair.sampled = ibooker.book2DD(name + "Sampled", name + "Sampled", nx, xlow, xhigh, ny, ylow, yhigh);
  pair.latched = ibooker.book2DD(name + "Latched", name + "Latched", nx, xlow, xhigh, ny, ylow, yhigh);
  return pair;
}

void Phase2TrackerBXHistogram::bookHistograms(DQMStore::IBooker& ibooker, edm::Run const&, edm::EventSetup const&) {
  using namespace cbc_timing;
  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Hist2D");
  offsetScan_ = book2D(ibooker, "OffsetScan", kBXNBins, kBXLow, kBXHigh);
  hitsTrueScan_ = book2D(ibooker, "HitsTrueNumberScan", kBXNBins, kBXLow, kBXHigh);
  attributionScan_ = book2D(ibooker, "AttributionScan", kAttrNBins, kAttrLow, kAttrHigh);

  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Hist1D");
  bxHistograms_.clear();
  for (double delay : scan_.delays()) {
    const std::string label = offsetLabel(delay);
    ModePair pair;
    pair.sampled = ibooker.book1DD("BXHistogramSampledOffset" + label, "BXHistogramSampledOffset" + label,
                                   kBXNBins, kBXLow, kBXHigh);
    pair.latched = ibooker.book1DD("BXHistogramLatchedOffset" + label, "BXHistogramLatchedOffset" + label,
                                   kBXNBins, kBXLow, kBXHigh);
    bxHistograms_.push_back(pair);
  }

  // Every stream copy writes the same values into the same (shared) monitor elements.
  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Info");
  ibooker.bookInt("SmearingSeed")->Fill(static_cast<long long>(smearing_.seed()));
  ibooker.bookString("SmearingKey", smearingKeyName_);
}

void Phase2TrackerBXHistogram::MonitorSink::fire(std::size_t d, int bx, bool sampled, bool latched) {
  const double value = cbc_timing::fillValue(bx);  // quirk: bx - 1.5
  const double delay = module.scan_.delays()[d];
  if (sampled) {
    module.bxHistograms_[d].sampled->Fill(value);
    module.offsetScan_.sampled->Fill(value, delay);
  }
  if (latched) {
    module.bxHistograms_[d].latched->Fill(value);
    module.offsetScan_.latched->Fill(value, delay);
  }
  module.hitsTrueScan_.sampled->Fill(value, delay);
  module.hitsTrueScan_.latched->Fill(value, delay);
}

void Phase2TrackerBXHistogram::MonitorSink::attribution(std::size_t d, int nSampled, int nLatched) {
  const double delay = module.scan_.delays()[d];
  module.attributionScan_.sampled->Fill(static_cast<double>(nSampled), delay);
  module.attributionScan_.latched->Fill(static_cast<double>(nLatched), delay);
}

uint32_t Phase2TrackerBXHistogram::smearingKeyOf(const TrackerTopology& topology, uint32_t rawId) const {
  if (smearingKey_ == cbc_timing::SmearingKey::Sensor)
    return rawId;
  // stack(): the module DetId of a sensor of a 2S/PS module; 0 for a DetId that is not in a stack.
  const uint32_t stack = DetId(topology.stack(DetId(rawId))).rawId();
  return stack != 0 ? stack : rawId;
}

void Phase2TrackerBXHistogram::analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) {
  const TrackerTopology& topology = iSetup.getData(topoToken_);
  MonitorSink sink{*this};
  unsigned long long notTwoS = 0;

  const ot_simhits::HitCounts counts =
      sources_.forEachHit(iEvent, iSetup.getData(geomToken_), [&](const ot_simhits::HitInfo& hit) {
        if (!selection_.accepts(hit.bunchCrossing, hit.trackId, hit.pt, hit.dz, hit.r, std::fabs(hit.z)))
          return;
        if (only2SModules_ && !hit.twoS) {
          notTwoS++;
          return;
        }
        // Per-module smearing, in the deployed float precision.
        const uint32_t key = smearingKeyOf(topology, hit.module);
        const float threshold =
            (hit.barrel ? thresholdBarrel_ : thresholdEndcap_) + smearing_.thresholdShift(key, hit.barrel);
        const float toa = hit.toa + smearing_.tofShift(key);
        if (verbosity_ > 1)
          edm::LogVerbatim("Phase2TrackerBXHistogram")
              << std::setprecision(9) << "hit on " << hit.module << " key " << key << " track " << hit.trackId
              << " pt " << hit.pt << " r " << hit.r << " z " << hit.z << " toa " << toa << " charge " << hit.charge
              << " threshold " << threshold;
        scan_.analyzeHit(hit.charge, toa, threshold, sink);
      });
  tally_->outerTracker += counts.outerTracker;
  tally_->noGeometry += counts.noGeometry;
  tally_->notTwoS += notTwoS;
}

void Phase2TrackerBXHistogram::endStream() {
  if (--tally_->openCopies > 0)
    return;  // another stream copy of this module is still running: the last one reports
  const unsigned long long seen = tally_->outerTracker, dropped = tally_->noGeometry;
  edm::LogInfo("Phase2TrackerBXHistogram")
      << label_ << ": " << seen << " Outer Tracker sim hits, " << dropped << " without geometry, " << tally_->notTwoS
      << " selected hits on PS modules skipped (Only2SModules)";
  if (dropped == 0)
    return;
  edm::LogWarning("Phase2TrackerBXHistogram")
      << label_ << ": " << dropped << " of " << seen
      << " Outer Tracker sim hits were dropped: the tracker geometry of this job has no module for their DetId "
         "(choose the geometry of the GEN-SIM input with the cfg option geometry=)";
  if (dropped == seen)
    throw cms::Exception("Configuration")
        << label_ << ": all " << seen
        << " Outer Tracker sim hits have no module in the tracker geometry of this job, the histograms are empty; "
           "run with the geometry of the GEN-SIM input (cfg option geometry=)";
}

DEFINE_FWK_MODULE(Phase2TrackerBXHistogram);
