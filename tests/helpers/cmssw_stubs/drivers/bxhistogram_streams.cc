// Runs the Phase2TrackerBXHistogram plugin against the CMSSW stand-in (../cmssw_stub_api.h)
// as the framework would with several streams: one module copy per stream, every copy booking
// into the same DQM store, the events of the job dealt out to the copies, endStream() on
// every copy at the end.  Used by tests/test_cmssw_streams.py to show that the histograms and
// the per-module offsets do not depend on the number of streams or on which copy sees which
// event.
//
//   bxhistogram_streams --describe
//       prints the plugin's fillDescriptions(): "<name> <type> <default>" per parameter
//   bxhistogram_streams --events E --streams S [--deal blocks|roundrobin|reverse]
//                       [--orphans F] [--no-geometry] [--set Name=value ...]
//       prints every monitor element ("ME <path> <kind> <values...>") on stdout; the
//       plugin's MessageLogger output goes to stderr; exit 3 when the job throws.
//
// The events are generated from the event number alone (std::mt19937_64), so they are the
// same whatever the dealing.  The geometry has 2S and PS modules in the barrel (TOB) and the
// endcap (TID), each with two sensors (stack + 1, stack + 2).  --orphans F gives a fraction F
// of the hits a DetId the geometry does not know; --no-geometry empties the geometry.

#include "SimTracker/SiPhase2TimingCalibration/plugins/Phase2TrackerBXHistogram.cc"
#include "describe.h"

#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <random>

namespace {
  constexpr double kLightSpeedCmPerNs = 29.9792458;

  struct Module {
    uint32_t stack;
    GlobalPoint position;
    bool barrel;
    bool twoS;
  };

  uint32_t stackId(int subdet, int index) {
    return (1u << 28) | (static_cast<uint32_t>(subdet) << 25) | (static_cast<uint32_t>(index) << 2);
  }

  std::vector<Module> makeModules() {
    std::vector<Module> modules;
    std::mt19937_64 rng(2024);
    std::uniform_real_distribution<double> phi(0, 2 * M_PI);
    for (int i = 0; i < 48; i++) {
      const bool barrel = i < 32;
      const double r = barrel ? 24. + 88. * (i % 8) / 7. : 30. + 80. * (i % 8) / 7.;
      const double z = barrel ? -100. + 200. * ((i / 8) % 4) / 3. : (i % 2 ? 1 : -1) * (130. + 135. * ((i / 8) % 2));
      const double p = phi(rng);
      modules.push_back({stackId(barrel ? StripSubdetector::TOB : StripSubdetector::TID, i + 1),
                         GlobalPoint(float(r * std::cos(p)), float(r * std::sin(p)), float(z)), barrel, i % 3 != 0});
    }
    return modules;
  }

  // One event, a function of its number only.
  edm::Event makeEvent(int number, const std::vector<Module>& modules, double orphans, bool mixing,
                       edm::StreamID stream) {
    std::mt19937_64 rng(1000003ULL * static_cast<unsigned long long>(number + 1));
    std::uniform_int_distribution<std::size_t> pickModule(0, modules.size() - 1);
    std::uniform_real_distribution<double> flat(0., 1.);
    std::normal_distribution<double> jitter(0., 3.);
    std::gamma_distribution<double> charge(4., 2500.);
    const EncodedEventId signal(0, number);

    edm::SimTrackContainer tracks;
    std::vector<PSimHit> tob, tid;
    for (int t = 1; t <= 40; t++) {
      const int bx = flat(rng) < 0.1 ? (flat(rng) < 0.5 ? -1 : 1) : 0;
      const EncodedEventId event(bx, number);
      tracks.emplace_back(event, static_cast<unsigned int>(t), 0.5 + 9.5 * flat(rng));
      for (int h = 0; h < 2; h++) {
        const Module& m = modules[pickModule(rng)];
        uint32_t detId = m.stack + 1 + static_cast<uint32_t>(h);
        if (flat(rng) < orphans)
          detId = stackId(m.barrel ? StripSubdetector::TOB : StripSubdetector::TID, 4000 + t) + 1;
        const float tof = static_cast<float>(m.position.mag() / kLightSpeedCmPerNs + jitter(rng));
        const float eloss = static_cast<float>(charge(rng) * 3.61e-9);
        const float dz = flat(rng) < 0.05 ? 0.005f : 0.03f;  // a few delta rays
        PSimHit hit(detId, t, event, LocalPoint(0.1f, 0.2f, dz / 2), LocalPoint(0.1f, 0.2f, -dz / 2), tof, eloss);
        (m.barrel ? tob : tid).push_back(hit);
      }
    }
    edm::Event ev(stream);
    if (mixing) {
      CrossingFrame<SimTrack> trackFrame;
      trackFrame.items = tracks;
      ev.put("mix:g4SimHits", trackFrame);
      CrossingFrame<PSimHit> tobFrame, tidFrame;
      tobFrame.items = tob;
      tidFrame.items = tid;
      ev.put("mix:g4SimHitsTrackerHitsTOBLowTof", tobFrame);
      ev.put("mix:g4SimHitsTrackerHitsTIDLowTof", tidFrame);
    } else {
      ev.put("g4SimHits", tracks);
      ev.put("g4SimHits:TrackerHitsTOBLowTof", edm::PSimHitContainer(tob));
      ev.put("g4SimHits:TrackerHitsTIDLowTof", edm::PSimHitContainer(tid));
    }
    return ev;
  }

  // "Name=value" on the description's type.
  void override(edm::ParameterSet& pset, const edm::ParameterSetDescription& desc, const std::string& assignment) {
    const auto eq = assignment.find('=');
    const std::string name = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    for (const auto& p : desc.parameters()) {
      if (p->name() != name)
        continue;
      if (p->type() == "string")
        pset.addParameter<std::string>(name, text);
      else if (p->type() == "double")
        pset.addParameter<double>(name, std::stod(text));
      else if (p->type() == "bool")
        pset.addParameter<bool>(name, text == "True" || text == "true" || text == "1");
      else if (p->type() == "int32")
        pset.addParameter<int>(name, std::stoi(text));
      else if (p->type() == "uint32")
        pset.addParameter<unsigned int>(name, static_cast<unsigned int>(std::stoul(text)));
      else {
        std::fprintf(stderr, "cannot override %s\n", name.c_str());
        std::exit(2);
      }
      return;
    }
    std::fprintf(stderr, "unknown parameter %s\n", name.c_str());
    std::exit(2);
  }

  edm::ParameterSet defaults(const edm::ParameterSetDescription& desc) {
    edm::ParameterSet pset;
    for (const auto& p : desc.parameters()) {
      const std::any& v = p->value();
      if (auto s = std::any_cast<std::string>(&v)) pset.addParameter(p->name(), *s);
      else if (auto d = std::any_cast<double>(&v)) pset.addParameter(p->name(), *d);
      else if (auto b = std::any_cast<bool>(&v)) pset.addParameter(p->name(), *b);
      else if (auto i = std::any_cast<int>(&v)) pset.addParameter(p->name(), *i);
      else if (auto u = std::any_cast<unsigned int>(&v)) pset.addParameter(p->name(), *u);
      else if (auto t = std::any_cast<edm::InputTag>(&v)) pset.addParameter(p->name(), *t);
      else if (auto ts = std::any_cast<std::vector<edm::InputTag>>(&v)) pset.addParameter(p->name(), *ts);
      else if (auto ds = std::any_cast<std::vector<double>>(&v)) pset.addParameter(p->name(), *ds);
    }
    return pset;
  }
}  // namespace

int main(int argc, char** argv) {
  edm::ConfigurationDescriptions descriptions;
  Phase2TrackerBXHistogram::fillDescriptions(descriptions);
  const edm::ParameterSetDescription& desc = descriptions.described().at(0).second;

  int nEvents = 20, nStreams = 1;
  double orphans = 0.;
  bool noGeometry = false;
  std::string deal = "blocks";
  std::vector<std::string> assignments;
  for (int a = 1; a < argc; a++) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string { return a + 1 < argc ? argv[++a] : ""; };
    if (arg == "--describe")
      return printDescriptions(descriptions);
    else if (arg == "--events")
      nEvents = std::stoi(next());
    else if (arg == "--streams")
      nStreams = std::stoi(next());
    else if (arg == "--deal")
      deal = next();
    else if (arg == "--orphans")
      orphans = std::stod(next());
    else if (arg == "--no-geometry")
      noGeometry = true;
    else if (arg == "--set")
      assignments.push_back(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }

  edm::ParameterSet pset = defaults(desc);
  for (const auto& assignment : assignments)
    override(pset, desc, assignment);
  pset.addParameter<std::string>("@module_label", "timeCalib");

  const std::vector<Module> modules = makeModules();
  TrackerGeometry geometry;
  if (!noGeometry)
    for (const Module& m : modules)
      for (uint32_t sensor = 1; sensor <= 2; sensor++) {
        using Type = TrackerGeometry::ModuleType;
        const Type type = m.twoS ? Type::Ph2SS : (sensor == 1 ? Type::Ph2PSP : Type::Ph2PSS);
        geometry.addDet(m.stack + sensor, m.position, type);
      }
  const TrackerTopology topology;
  edm::EventSetup setup;
  setup.add(geometry);
  setup.add(topology);

  // Which copy gets event e.
  std::vector<std::vector<int>> dealt(static_cast<std::size_t>(nStreams));
  for (int e = 0; e < nEvents; e++) {
    const int event = deal == "reverse" ? nEvents - 1 - e : e;
    const int stream = deal == "roundrobin" ? e % nStreams : e * nStreams / nEvents;
    dealt[static_cast<std::size_t>(stream)].push_back(event);
  }

  DQMStoreStub::Store store;
  int status = 0;
  try {
    std::vector<std::unique_ptr<Phase2TrackerBXHistogram>> copies;
    for (int s = 0; s < nStreams; s++) {
      copies.push_back(std::make_unique<Phase2TrackerBXHistogram>(pset));
      DQMStoreStub::IBooker booker(store);
      copies.back()->bookHistograms(booker, edm::Run(), setup);
    }
    const bool mixing = pset.getParameter<bool>("UseMixing");
    // interleave the copies as concurrent streams would
    std::size_t longest = 0;
    for (const auto& events : dealt)
      longest = std::max(longest, events.size());
    for (std::size_t k = 0; k < longest; k++)
      for (int s = 0; s < nStreams; s++)
        if (k < dealt[static_cast<std::size_t>(s)].size())
          copies[static_cast<std::size_t>(s)]->analyze(
              makeEvent(dealt[static_cast<std::size_t>(s)][k], modules, orphans, mixing,
                        edm::StreamID(static_cast<unsigned int>(s))),
              setup);
    for (auto& copy : copies)
      copy->endStream();
  } catch (const cms::Exception& e) {
    std::fprintf(stderr, "EXCEPTION %s\n", e.what());
    status = 3;
  }

  for (const auto& [path, me] : store) {
    std::printf("ME %s %s", path.c_str(), me->kind().c_str());
    if (me->kind() == "INT")
      std::printf(" %lld", me->intValue());
    else if (me->kind() == "STRING")
      std::printf(" %s", me->stringValue().c_str());
    else
      for (double c : me->contents())
        std::printf(" %.17g", c);
    std::printf("\n");
  }
  return status;
}
