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
// Output (physics.md section 6), under TopFolderName (Ph2TkBXHist):
//   Hist1D/BXHistogram{Sampled,Latched}Offset<d>       TH1F(11, -5.5, 5.5), one per delay
//   Hist2D/OffsetScan{Sampled,Latched}                 TH2F bx fill value vs delay
//   Hist2D/HitsTrueNumberScan{Sampled,Latched}         every hit at every bx, vs delay
//   Hist2D/AttributionScan{Sampled,Latched}            number of BXs fired per hit, vs delay

#include "SimTracker/SiPhase2TimingCalibration/interface/CBCTimingModel.h"
#include "OuterTrackerSimHits.h"

#include "DQMServices/Core/interface/DQMEDAnalyzer.h"
#include "DQMServices/Core/interface/DQMStore.h"

#include "FWCore/Framework/interface/Event.h"
#include "FWCore/Framework/interface/EventSetup.h"
#include "FWCore/Framework/interface/MakerMacros.h"
#include "FWCore/MessageLogger/interface/MessageLogger.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ServiceRegistry/interface/Service.h"
#include "FWCore/Utilities/interface/ESGetToken.h"
#include "FWCore/Utilities/interface/ESInputTag.h"
#include "FWCore/Utilities/interface/Exception.h"
#include "FWCore/Utilities/interface/RandomNumberGenerator.h"

#include "Geometry/Records/interface/TrackerDigiGeometryRecord.h"
#include "Geometry/TrackerGeometryBuilder/interface/TrackerGeometry.h"

#include "CLHEP/Random/RandFlat.h"

#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

class Phase2TrackerBXHistogram : public DQMEDAnalyzer {
public:
  explicit Phase2TrackerBXHistogram(const edm::ParameterSet&);
  ~Phase2TrackerBXHistogram() override = default;

  void bookHistograms(DQMStore::IBooker& ibooker, edm::Run const& iRun, edm::EventSetup const& iSetup) override;
  void analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) override;

private:
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

  float moduleShift(std::map<uint32_t, float>& cache, uint32_t rawId, double width, CLHEP::HepRandomEngine& engine);
  ModePair book2D(DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const;

  const std::string topFolder_;
  const std::string mode_;
  const double offsetMin_;
  const double offsetMax_;
  const double offsetStep_;
  const float thresholdBarrel_;
  const float thresholdEndcap_;
  const double thresholdSmearingBarrel_;
  const double thresholdSmearingEndcap_;
  const double tofSmearing_;
  const int verbosity_;
  const cbc_timing::HitSelection selection_;
  const cbc_timing::BXScan scan_;

  const ot_simhits::Sources sources_;
  const edm::ESGetToken<TrackerGeometry, TrackerDigiGeometryRecord> geomToken_;

  // Per-module smearing, drawn at the first hit of a module and kept for the whole job.
  std::map<uint32_t, float> thresholdShifts_;
  std::map<uint32_t, float> tofShifts_;

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
}  // namespace

Phase2TrackerBXHistogram::Phase2TrackerBXHistogram(const edm::ParameterSet& config)
    : topFolder_(config.getParameter<std::string>("TopFolderName")),
      mode_(config.getParameter<std::string>("Mode")),
      offsetMin_(config.getParameter<double>("OffsetMin")),
      offsetMax_(config.getParameter<double>("OffsetMax")),
      offsetStep_(config.getParameter<double>("OffsetStep")),
      thresholdBarrel_(config.getParameter<double>("ThresholdInElectrons_Barrel")),
      thresholdEndcap_(config.getParameter<double>("ThresholdInElectrons_Endcap")),
      thresholdSmearingBarrel_(config.getParameter<double>("ThresholdSmearing_Barrel")),
      thresholdSmearingEndcap_(config.getParameter<double>("ThresholdSmearing_Endcap")),
      tofSmearing_(config.getParameter<double>("TOFSmearing")),
      verbosity_(config.getParameter<int>("VerbosityLevel")),
      selection_{config.getParameter<double>("PTCut"),
                 checked("Subdetector", &cbc_timing::regionWindow, config.getParameter<std::string>("Subdetector"))},
      scan_(delaysFor(config),
            checked("Model", &cbc_timing::parseModel, config.getParameter<std::string>("Model")),
            pulseParameters(config.getParameter<std::vector<double>>("PulseShapeParameters"))),
      sources_(config, consumesCollector()),
      geomToken_(esConsumes<TrackerGeometry, TrackerDigiGeometryRecord>(
          edm::ESInputTag("", config.getParameter<std::string>("GeometryType")))) {
  edm::LogInfo("Phase2TrackerBXHistogram")
      << "mode " << mode_ << ", model " << cbc_timing::modelName(scan_.model()) << ", " << scan_.delays().size()
      << " delays, threshold barrel/endcap " << thresholdBarrel_ << "/" << thresholdEndcap_ << " e, smearing "
      << thresholdSmearingBarrel_ << "/" << thresholdSmearingEndcap_ << " e, ToF smearing " << tofSmearing_ << " ns";
}

Phase2TrackerBXHistogram::ModePair Phase2TrackerBXHistogram::book2D(
    DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const {
  // y: one bin per delay on [min - step/2, max + step/2] (physics.md section 6).
  const int ny = static_cast<int>(scan_.delays().size());
  const double ylow = offsetMin_ - offsetStep_ / 2, yhigh = offsetMax_ + offsetStep_ / 2;
  ModePair pair;
  pair.sampled = ibooker.book2D(name + "Sampled", name + "Sampled", nx, xlow, xhigh, ny, ylow, yhigh);
  pair.latched = ibooker.book2D(name + "Latched", name + "Latched", nx, xlow, xhigh, ny, ylow, yhigh);
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
    pair.sampled = ibooker.book1D("BXHistogramSampledOffset" + label, "BXHistogramSampledOffset" + label,
                                  kBXNBins, kBXLow, kBXHigh);
    pair.latched = ibooker.book1D("BXHistogramLatchedOffset" + label, "BXHistogramLatchedOffset" + label,
                                  kBXNBins, kBXLow, kBXHigh);
    bxHistograms_.push_back(pair);
  }
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

float Phase2TrackerBXHistogram::moduleShift(std::map<uint32_t, float>& cache, uint32_t rawId, double width,
                                            CLHEP::HepRandomEngine& engine) {
  if (!(width > 0.))
    return 0.f;
  auto found = cache.find(rawId);
  if (found != cache.end())
    return found->second;
  const float shift = static_cast<float>(CLHEP::RandFlat::shoot(&engine, -width, width));
  cache.emplace(rawId, shift);
  return shift;
}

void Phase2TrackerBXHistogram::analyze(const edm::Event& iEvent, const edm::EventSetup& iSetup) {
  edm::Service<edm::RandomNumberGenerator> rng;
  if (!rng.isAvailable())
    throw cms::Exception("Configuration") << "Phase2TrackerBXHistogram needs the RandomNumberGeneratorService "
                                             "(with an engine for this module) for the smearing";
  CLHEP::HepRandomEngine& engine = rng->getEngine(iEvent.streamID());
  MonitorSink sink{*this};

  sources_.forEachHit(iEvent, iSetup.getData(geomToken_), [&](const ot_simhits::HitInfo& hit) {
    if (!selection_.accepts(hit.bunchCrossing, hit.trackId, hit.pt, hit.dz, hit.r, std::fabs(hit.z)))
      return;
    // Per-module smearing, in the deployed float precision.
    float threshold = hit.barrel ? thresholdBarrel_ : thresholdEndcap_;
    threshold += moduleShift(thresholdShifts_, hit.module,
                             hit.barrel ? thresholdSmearingBarrel_ : thresholdSmearingEndcap_, engine);
    const float toa = hit.toa + moduleShift(tofShifts_, hit.module, tofSmearing_, engine);
    if (verbosity_ > 1)
      edm::LogVerbatim("Phase2TrackerBXHistogram")
          << "hit on " << hit.module << " track " << hit.trackId << " pt " << hit.pt << " r " << hit.r << " z "
          << hit.z << " toa " << toa << " charge " << hit.charge << " threshold " << threshold;
    scan_.analyzeHit(hit.charge, toa, threshold, sink);
  });
}

DEFINE_FWK_MODULE(Phase2TrackerBXHistogram);
