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
// Threads: a DQMGlobalEDAnalyzer (DQMServices/Core/interface/DQMGlobalEDAnalyzer.h): one
// instance serves every stream, dqmAnalyze is const and runs concurrently for different
// events.  Nothing in it depends on which thread sees which event: the per-module offsets
// are a function of (SmearingSeed, module) computed on the fly (interface/ModuleSmearing.h),
// an event's counts are accumulated in local arrays, and the job's tally is atomics of this
// one instance (no state shared through statics).  So 1 thread and 8 threads give identical
// histograms, and the job needs no RandomNumberGeneratorService.
//
// Filling: every selected hit is evaluated at every delay and BX (~12-23k decisions per hit
// at 501 delays).  They are counted per event and each non-empty bin is filled once per event
// with its count as weight: the monitor elements are shared by all threads and every Fill
// takes the element's lock, so one Fill per decision would serialise a multithreaded job.
// The histograms are booked with TH1::kIsNotW so that ROOT does not switch to Sumw2 on a
// weight != 1: bin contents, bin errors (sqrt(N)) and the fill statistics (mean, RMS) are
// exactly those of one unit Fill per decision; only the entry count differs (one per
// non-empty bin and event).
//
// Output (physics.md section 6), under TopFolderName (Ph2TkBXHist):
//   Hist1D/BXHistogram{Sampled,Latched}Offset<d>       TH1D(11, -5.5, 5.5), one per delay
//   Hist2D/OffsetScan{Sampled,Latched}                 TH2D bx fill value vs delay
//   Hist2D/HitsTrueNumberScan{Sampled,Latched}         every hit at every bx, vs delay
//   Hist2D/AttributionScan{Sampled,Latched}            number of BXs fired per hit, vs delay
//   Info/SmearingSeed (int), Info/SmearingKey (string) the smearing of the job, to reproduce it
// The delay axis has one bin per delay scanned, on [first - step/2, last + step/2] with the
// delays actually scanned (README "Exactness and the two models": the deployed axis used
// OffsetMax, which mis-bins scans whose accumulated list overshoots it).  The histograms are
// double precision (book1DD/book2DD): a float bin stops counting exactly at 2^24 entries,
// which a pile-up scan reaches in the HitsTrueNumber maps.
//
// At the end of the job the module reports (LogPrint, shown by the default MessageLogger)
// how many Outer Tracker hits it read, selected, and could not place (idToDet threw
// WrongTrackerSubDet: a geometry that is not the GEN-SIM's); it fails when it read no Outer
// Tracker hit at all (naming the collections) or could place none.

#include "SimTracker/SiPhase2TimingCalibration/interface/CBCTimingModel.h"
#include "SimTracker/SiPhase2TimingCalibration/interface/ModuleSmearing.h"
#include "OuterTrackerSimHits.h"

#include "DQMServices/Core/interface/DQMGlobalEDAnalyzer.h"
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

#include "TH1.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bxhist {
  struct ModePair {
    dqm::reco::MonitorElement* sampled = nullptr;
    dqm::reco::MonitorElement* latched = nullptr;
  };

  // The monitor elements of one run (the RunCache of the DQMGlobalEDAnalyzer).
  struct Histograms {
    std::vector<ModePair> bx;  // one pair per delay
    ModePair offsetScan;
    ModePair hitsTrueScan;
    ModePair attributionScan;
  };

  // One event's decisions, counted: [delay][bx + 5] and [delay][number of BXs fired].
  struct EventCounts {
    explicit EventCounts(std::size_t nDelays)
        : sampled(nDelays * cbc_timing::kNBX, 0),
          latched(nDelays * cbc_timing::kNBX, 0),
          attributionSampled(nDelays * (cbc_timing::kNBX + 1), 0),
          attributionLatched(nDelays * (cbc_timing::kNBX + 1), 0) {}

    void fire(std::size_t d, int bx, bool isSampled, bool isLatched) {
      const std::size_t i = d * cbc_timing::kNBX + static_cast<std::size_t>(bx + cbc_timing::kBXRange);
      sampled[i] += isSampled;
      latched[i] += isLatched;
    }
    void attribution(std::size_t d, int nSampled, int nLatched) {
      attributionSampled[d * (cbc_timing::kNBX + 1) + static_cast<std::size_t>(nSampled)]++;
      attributionLatched[d * (cbc_timing::kNBX + 1) + static_cast<std::size_t>(nLatched)]++;
    }

    std::vector<unsigned> sampled, latched, attributionSampled, attributionLatched;
    unsigned long long selectedHits = 0;
  };

  // VerbosityLevel 3: the same counts, and one line per hit and delay where it fired.
  struct LoggingCounts {
    EventCounts& counts;
    const std::vector<double>& delays;
    std::ostringstream line;
    std::string sampledBXs, latchedBXs;

    void fire(std::size_t d, int bx, bool isSampled, bool isLatched) {
      counts.fire(d, bx, isSampled, isLatched);
      if (isSampled)
        sampledBXs += " " + std::to_string(bx);
      if (isLatched)
        latchedBXs += " " + std::to_string(bx);
    }
    void attribution(std::size_t d, int nSampled, int nLatched) {
      counts.attribution(d, nSampled, nLatched);
      if (nSampled || nLatched)
        line << "\n  delay " << delays[d] << ": sampled bx" << (sampledBXs.empty() ? " -" : sampledBXs)
             << ", latched bx" << (latchedBXs.empty() ? " -" : latchedBXs);
      sampledBXs.clear();
      latchedBXs.clear();
    }
  };
}  // namespace bxhist

class Phase2TrackerBXHistogram : public DQMGlobalEDAnalyzer<bxhist::Histograms> {
public:
  explicit Phase2TrackerBXHistogram(const edm::ParameterSet&);
  ~Phase2TrackerBXHistogram() override = default;

  static void fillDescriptions(edm::ConfigurationDescriptions& descriptions);

private:
  void bookHistograms(DQMStore::IBooker& ibooker,
                      edm::Run const& iRun,
                      edm::EventSetup const& iSetup,
                      bxhist::Histograms& histograms) const override;
  void dqmAnalyze(const edm::Event& iEvent,
                  const edm::EventSetup& iSetup,
                  const bxhist::Histograms& histograms) const override;
  void endJob() override;

  uint32_t smearingKeyOf(const TrackerTopology& topology, uint32_t rawId) const;
  bxhist::ModePair book2D(DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const;
  void fill(const bxhist::EventCounts& counts, const bxhist::Histograms& histograms) const;
  std::string configuration() const;

  const std::string label_;
  const std::string topFolder_;
  const std::string mode_;
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

  // The job's tally: one instance serves every stream, so plain atomics of this object.
  mutable std::atomic<unsigned long long> events_{0};
  mutable std::atomic<unsigned long long> outerTracker_{0};
  mutable std::atomic<unsigned long long> noGeometry_{0};
  mutable std::atomic<unsigned long long> selected_{0};
  mutable std::atomic<unsigned long long> notTwoS_{0};
  mutable std::mutex firstUnknownMutex_;  // guards the two below (written once)
  mutable uint32_t firstUnknownDetId_ = 0;
  mutable std::string firstUnknownMessage_;
};

namespace {
  std::vector<double> delaysFor(const edm::ParameterSet& config) {
    const std::string mode = config.getParameter<std::string>("Mode");
    if (mode == "emulate")
      return {config.getParameter<double>("OffsetEmulate")};
    if (mode != "scan")
      throw cms::Exception("Configuration") << "Mode '" << mode << "' not understood (allowed: scan, emulate)";
    try {
      return cbc_timing::scanDelays(config.getParameter<double>("OffsetMin"),
                                    config.getParameter<double>("OffsetMax"),
                                    config.getParameter<double>("OffsetStep"));
    } catch (const std::invalid_argument& e) {
      throw cms::Exception("Configuration") << e.what();
    }
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

  cbc_timing::BXScan scanFor(const edm::ParameterSet& config) {
    const auto model = checked("Model", &cbc_timing::parseModel, config.getParameter<std::string>("Model"));
    try {
      return cbc_timing::BXScan(
          delaysFor(config), model, pulseParameters(config.getParameter<std::vector<double>>("PulseShapeParameters")));
    } catch (const std::invalid_argument& e) {
      throw cms::Exception("Configuration") << "PulseShapeParameters: " << e.what();
    }
  }

  int verbosityFor(const edm::ParameterSet& config) {
    const int level = config.getParameter<int>("VerbosityLevel");
    if (level < 0 || level > 3)
      throw cms::Exception("Configuration") << "VerbosityLevel " << level
                                            << " not understood (allowed: 0 summary, 1 job and events, 2 hits, "
                                               "3 BXs fired)";
    return level;
  }

  // Marks a booked histogram as filled with counts as weights (see the file header).
  dqm::reco::MonitorElement* countsAsWeights(dqm::reco::MonitorElement* me) {
    me->getTH1()->SetBit(TH1::kIsNotW);
    return me;
  }
}  // namespace

Phase2TrackerBXHistogram::Phase2TrackerBXHistogram(const edm::ParameterSet& config)
    : label_(config.getParameter<std::string>("@module_label")),
      topFolder_(config.getParameter<std::string>("TopFolderName")),
      mode_(config.getParameter<std::string>("Mode")),
      offsetStep_(config.getParameter<double>("OffsetStep")),
      thresholdBarrel_(static_cast<float>(config.getParameter<double>("ThresholdInElectrons_Barrel"))),
      thresholdEndcap_(static_cast<float>(config.getParameter<double>("ThresholdInElectrons_Endcap"))),
      smearing_(smearingFor(config)),
      smearingKeyName_(config.getParameter<std::string>("SmearingKey")),
      smearingKey_(checked("SmearingKey", &cbc_timing::parseSmearingKey, smearingKeyName_)),
      only2SModules_(config.getParameter<bool>("Only2SModules")),
      verbosity_(verbosityFor(config)),
      selection_{config.getParameter<double>("PTCut"),
                 checked("Subdetector", &cbc_timing::regionWindow, config.getParameter<std::string>("Subdetector"))},
      scan_(scanFor(config)),
      sources_(config, consumesCollector()),
      geomToken_(esConsumes<TrackerGeometry, TrackerDigiGeometryRecord>(
          edm::ESInputTag("", config.getParameter<std::string>("GeometryType")))),
      topoToken_(esConsumes<TrackerTopology, TrackerTopologyRcd>()) {
  if (!(offsetStep_ > 0.))
    throw cms::Exception("Configuration") << "OffsetStep must be > 0 (it is also the width of the delay bins)";
  if (verbosity_ >= 1)
    edm::LogVerbatim("Phase2TrackerBXHistogram") << configuration();
}

std::string Phase2TrackerBXHistogram::configuration() const {
  std::ostringstream out;
  out << label_ << ": mode " << mode_ << ", model " << cbc_timing::modelName(scan_.model()) << ", "
      << scan_.delays().size() << " delays from " << scan_.delays().front() << " to " << scan_.delays().back()
      << " ns, threshold barrel/endcap " << thresholdBarrel_ << "/" << thresholdEndcap_ << " e, smearing seed "
      << smearing_.seed() << " keyed by " << smearingKeyName_ << (only2SModules_ ? ", 2S modules only" : "")
      << ", hits from " << sources_.hitCollections();
  return out.str();
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
      ->setComment(
          "module: one offset per module (TrackerTopology::stack); sensor: one per sensor DetId, as the "
          "deployed analyzer");
  desc.add<bool>("Only2SModules", false)
      ->setComment("apply the CBC model to 2S modules only (PS modules are read out by the SSA/MPA)");
  desc.add<double>("OffsetMin", 0.);
  desc.add<double>("OffsetMax", 50.);
  desc.add<double>("OffsetStep", 0.1)->setComment("also the width of the delay bins of the 2D maps (emulate too)");
  desc.add<double>("OffsetEmulate", 0.);
  desc.add<std::vector<double>>("PulseShapeParameters", {0., 16.043703, 99.999857, 40.571650, 2., 1.2459094})
      ->setComment("(delay placeholder, tau, r, theta, n, A) of the CBC3 pulse, physics.md section 2");
  desc.add<int>("VerbosityLevel", 0)
      ->setComment(
          "0: end-of-job summary only; 1: + configuration and one line per event; 2: + one line per selected "
          "hit; 3: + the BXs each hit fired at each delay (LogVerbatim, category Phase2TrackerBXHistogram)");
  descriptions.addWithDefaultLabel(desc);
}

bxhist::ModePair Phase2TrackerBXHistogram::book2D(
    DQMStore::IBooker& ibooker, const std::string& name, int nx, double xlow, double xhigh) const {
  // y: one bin per delay scanned, centred on it: [first - step/2, last + step/2].
  const std::vector<double>& delays = scan_.delays();
  const int ny = static_cast<int>(delays.size());
  const double ylow = delays.front() - offsetStep_ / 2, yhigh = delays.back() + offsetStep_ / 2;
  bxhist::ModePair pair;
  pair.sampled =
      countsAsWeights(ibooker.book2DD(name + "Sampled", name + "Sampled", nx, xlow, xhigh, ny, ylow, yhigh));
  pair.latched =
      countsAsWeights(ibooker.book2DD(name + "Latched", name + "Latched", nx, xlow, xhigh, ny, ylow, yhigh));
  return pair;
}

void Phase2TrackerBXHistogram::bookHistograms(DQMStore::IBooker& ibooker,
                                              edm::Run const&,
                                              edm::EventSetup const&,
                                              bxhist::Histograms& histograms) const {
  using namespace cbc_timing;
  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Hist2D");
  histograms.offsetScan = book2D(ibooker, "OffsetScan", kBXNBins, kBXLow, kBXHigh);
  histograms.hitsTrueScan = book2D(ibooker, "HitsTrueNumberScan", kBXNBins, kBXLow, kBXHigh);
  histograms.attributionScan = book2D(ibooker, "AttributionScan", kAttrNBins, kAttrLow, kAttrHigh);

  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Hist1D");
  histograms.bx.clear();
  for (double delay : scan_.delays()) {
    const std::string label = offsetLabel(delay);
    bxhist::ModePair pair;
    pair.sampled = countsAsWeights(ibooker.book1DD(
        "BXHistogramSampledOffset" + label, "BXHistogramSampledOffset" + label, kBXNBins, kBXLow, kBXHigh));
    pair.latched = countsAsWeights(ibooker.book1DD(
        "BXHistogramLatchedOffset" + label, "BXHistogramLatchedOffset" + label, kBXNBins, kBXLow, kBXHigh));
    histograms.bx.push_back(pair);
  }

  ibooker.cd();
  ibooker.setCurrentFolder(topFolder_ + "/Info");
  ibooker.bookInt("SmearingSeed")->Fill(static_cast<long long>(smearing_.seed()));
  ibooker.bookString("SmearingKey", smearingKeyName_);
}

uint32_t Phase2TrackerBXHistogram::smearingKeyOf(const TrackerTopology& topology, uint32_t rawId) const {
  if (smearingKey_ == cbc_timing::SmearingKey::Sensor)
    return rawId;
  // stack(): the module DetId of a sensor of a 2S/PS module; 0 for a DetId that is not in a stack.
  const uint32_t stack = DetId(topology.stack(DetId(rawId))).rawId();
  return stack != 0 ? stack : rawId;
}

// One weighted Fill per non-empty bin: x (and y) are the values the per-decision fills would
// use, so the statistics match them too.
void Phase2TrackerBXHistogram::fill(const bxhist::EventCounts& counts, const bxhist::Histograms& histograms) const {
  using namespace cbc_timing;
  if (counts.selectedHits == 0)
    return;
  const double selected = static_cast<double>(counts.selectedHits);
  const std::vector<double>& delays = scan_.delays();
  for (std::size_t d = 0; d < delays.size(); d++) {
    const double delay = delays[d];
    for (int bx = -kBXRange; bx <= kBXRange; bx++) {
      const std::size_t i = d * kNBX + static_cast<std::size_t>(bx + kBXRange);
      const double value = fillValue(bx);  // quirk: bx - 1.5
      if (const unsigned n = counts.sampled[i]) {
        histograms.bx[d].sampled->Fill(value, static_cast<double>(n));
        histograms.offsetScan.sampled->Fill(value, delay, static_cast<double>(n));
      }
      if (const unsigned n = counts.latched[i]) {
        histograms.bx[d].latched->Fill(value, static_cast<double>(n));
        histograms.offsetScan.latched->Fill(value, delay, static_cast<double>(n));
      }
      // Every selected hit is counted at every bx (the efficiency's denominator).
      histograms.hitsTrueScan.sampled->Fill(value, delay, selected);
      histograms.hitsTrueScan.latched->Fill(value, delay, selected);
    }
    for (int fired = 0; fired <= kNBX; fired++) {
      const std::size_t i = d * (kNBX + 1) + static_cast<std::size_t>(fired);
      if (const unsigned n = counts.attributionSampled[i])
        histograms.attributionScan.sampled->Fill(static_cast<double>(fired), delay, static_cast<double>(n));
      if (const unsigned n = counts.attributionLatched[i])
        histograms.attributionScan.latched->Fill(static_cast<double>(fired), delay, static_cast<double>(n));
    }
  }
}

void Phase2TrackerBXHistogram::dqmAnalyze(const edm::Event& iEvent,
                                          const edm::EventSetup& iSetup,
                                          const bxhist::Histograms& histograms) const {
  const TrackerTopology& topology = iSetup.getData(topoToken_);
  bxhist::EventCounts counts(scan_.delays().size());
  unsigned long long notTwoS = 0;

  const ot_simhits::HitCounts read =
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
        counts.selectedHits++;
        if (verbosity_ < 2) {
          scan_.analyzeHit(hit.charge, toa, threshold, counts);
          return;
        }
        bxhist::LoggingCounts logging{counts, scan_.delays(), {}, {}, {}};
        if (verbosity_ >= 3)
          scan_.analyzeHit(hit.charge, toa, threshold, logging);
        else
          scan_.analyzeHit(hit.charge, toa, threshold, counts);
        edm::LogVerbatim("Phase2TrackerBXHistogram")
            << std::setprecision(9) << "hit on " << hit.module << " key " << key << " track " << hit.trackId << " pt "
            << hit.pt << " r " << hit.r << " z " << hit.z << " toa " << toa << " charge " << hit.charge
            << " threshold " << threshold << logging.line.str();
      });
  fill(counts, histograms);

  events_++;
  outerTracker_ += read.outerTracker;
  noGeometry_ += read.noGeometry;
  selected_ += counts.selectedHits;
  notTwoS_ += notTwoS;
  if (read.noGeometry > 0) {
    std::lock_guard<std::mutex> lock(firstUnknownMutex_);
    if (firstUnknownMessage_.empty()) {
      firstUnknownDetId_ = read.firstUnknownDetId;
      firstUnknownMessage_ = read.firstUnknownMessage;
    }
  }
  if (verbosity_ >= 1)
    edm::LogVerbatim("Phase2TrackerBXHistogram")
        << label_ << ": event " << iEvent.id().event() << ": " << read.outerTracker << " Outer Tracker sim hits, "
        << read.noGeometry << " not in the geometry, " << counts.selectedHits << " selected";
}

void Phase2TrackerBXHistogram::endJob() {
  ot_simhits::JobTally tally;
  tally.events = events_.load();
  tally.outerTracker = outerTracker_.load();
  tally.noGeometry = noGeometry_.load();
  tally.firstUnknownDetId = firstUnknownDetId_;
  tally.firstUnknownMessage = firstUnknownMessage_;
  // The summary is LogPrint: LogInfo and LogVerbatim are hidden by the default MessageLogger.
  edm::LogPrint("Phase2TrackerBXHistogram")
      << label_ << " summary: " << tally.events << " events, " << tally.outerTracker << " Outer Tracker sim hits, "
      << tally.noGeometry << " not in the geometry, " << selected_.load() << " selected ("
      << scan_.delays().size() << " delays, " << cbc_timing::modelName(scan_.model()) << " model), "
      << notTwoS_.load() << " selected hits on PS modules skipped (Only2SModules)";
  const std::string dropped = ot_simhits::droppedHitsWarning(label_, tally);
  if (!dropped.empty())
    edm::LogWarning("Phase2TrackerBXHistogram") << dropped;
  ot_simhits::failIfNothingUsable(label_, tally, sources_);
}

DEFINE_FWK_MODULE(Phase2TrackerBXHistogram);
