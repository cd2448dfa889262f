// Runs the Phase2TrackerBXHistogram plugin against the CMSSW stand-in (../cmssw_stub_api.h)
// as cmsRun runs a DQMGlobalEDAnalyzer: one module instance, the run's histograms booked once,
// dqmAnalyze called for the job's events from several threads at once, endJob at the end.
// Used by tests/test_cmssw_jobs.py to show that the histograms do not depend on the number of
// threads or on which thread sees which event, that they equal the header's per-hit counts,
// and how the module reports hits it cannot use.
//
//   bxhistogram_job --describe
//       prints the plugin's fillDescriptions(): "<name> <type> <default>" per parameter
//   bxhistogram_job --events E --threads T [--deal blocks|roundrobin|reverse]
//                   [--orphans F] [--no-geometry] [--no-hits] [--drop KEY] [--log-info]
//                   [--set Name=value ...]
//       prints every monitor element on stdout ("ME <path> <kind> <values...>", then
//       "AXIS <path> nx xlow xhigh ny ylow yhigh", "ENTRIES <path> n" and, when the element
//       has a sum of squared weights, "SUMW2 <path> <values...>"), after "GENERATED <hits>
//       <hits on unknown DetIds>" (Outer Tracker hits put in the events); the plugin's MessageLogger
//       output goes to stderr; exit 3 when the job throws (the exception's text on stderr).
//
// The events are generated from the event number alone (std::mt19937_64), so they are the
// same whatever the dealing.  The geometry has 2S and PS modules in the barrel (TOB) and the
// endcap (TID), each with two sensors (stack + 1, stack + 2).  --orphans F gives a fraction F
// of the hits a DetId the geometry does not have; --no-geometry empties the geometry;
// --no-hits puts empty hit collections in the events; --drop KEY leaves the product
// "label:instance" out of the events; --log-info enables the plugin's INFO category, as
// process.MessageLogger.cerr.Phase2TrackerBXHistogram = cms.untracked.PSet(...) does.

#include "SimTracker/SiPhase2TimingCalibration/plugins/Phase2TrackerBXHistogram.cc"
#include "describe.h"
#include "events.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iomanip>
#include <random>
#include <thread>

using namespace drivers;

int main(int argc, char** argv) {
  edm::ConfigurationDescriptions descriptions;
  Phase2TrackerBXHistogram::fillDescriptions(descriptions);
  const edm::ParameterSetDescription& desc = descriptions.described().at(0).second;

  CommonOptions options;
  int nThreads = 1;
  std::string deal = "blocks";
  std::vector<std::string> dropped;
  for (int a = 1; a < argc; a++) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string { return a + 1 < argc ? argv[++a] : ""; };
    if (arg == "--describe")
      return printDescriptions(descriptions);
    else if (options.parse(arg, next))
      continue;
    else if (arg == "--threads")
      nThreads = std::stoi(next());
    else if (arg == "--deal")
      deal = next();
    else if (arg == "--drop")
      dropped.push_back(next());
    else if (arg == "--log-info")
      edm::stub::enabledInfoCategories().insert("Phase2TrackerBXHistogram");
    else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }

  edm::ParameterSet pset = options.parameters(desc);
  pset.addParameter<std::string>("@module_label", "timeCalib");
  const int nEvents = options.events;
  const double orphans = options.orphans;
  const bool noHits = options.noHits;

  const std::vector<Module> modules = makeModules();
  const Setup jobSetup(modules, options.noGeometry);
  const edm::EventSetup& setup = jobSetup.eventSetup;

  // Which thread gets event e.
  std::vector<std::vector<int>> dealt(static_cast<std::size_t>(nThreads));
  for (int e = 0; e < nEvents; e++) {
    const int event = deal == "reverse" ? nEvents - 1 - e : e;
    const int thread = deal == "roundrobin" ? e % nThreads : e * nThreads / nEvents;
    dealt[static_cast<std::size_t>(thread)].push_back(event);
  }

  DQMStoreStub::Store store;
  int status = 0;
  auto fail = [&status](const std::exception& e) {
    std::lock_guard<std::mutex> lock(edm::stub::logMutex());
    std::fprintf(stderr, "EXCEPTION %s\n", e.what());
    status = 3;
  };
  try {
    Phase2TrackerBXHistogram plugin(pset);
    DQMGlobalEDAnalyzer<bxhist::Histograms>& module = plugin;  // the framework calls through the base
    bxhist::Histograms histograms;
    DQMStoreStub::IBooker booker(store);
    module.bookHistograms(booker, edm::Run(), setup, histograms);
    const bool mixing = pset.getParameter<bool>("UseMixing");
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nThreads));
    for (int t = 0; t < nThreads; t++)
      threads.emplace_back([&, t]() {
        try {
          for (int event : dealt[static_cast<std::size_t>(t)])
            module.dqmAnalyze(makeEvent(event, modules, orphans, mixing, noHits, dropped,
                                        edm::StreamID(static_cast<unsigned int>(t))),
                              setup, histograms);
        } catch (...) {
          errors[static_cast<std::size_t>(t)] = std::current_exception();
        }
      });
    for (auto& thread : threads)
      thread.join();
    for (const auto& error : errors)
      if (error)
        std::rethrow_exception(error);  // cmsRun stops at the first exception
    module.endJob();
  } catch (const cms::Exception& e) {
    fail(e);
  }

  std::printf("GENERATED %lld %lld\n", noHits ? 0LL : generatedHits.load(), noHits ? 0LL : generatedOrphans.load());
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
    if (me->kind() == "INT" || me->kind() == "STRING")
      continue;
    std::printf("AXIS %s %d %.17g %.17g %d %.17g %.17g\n", path.c_str(), me->nx(), me->xlow(), me->xhigh(), me->ny(),
                me->ylow(), me->yhigh());
    std::printf("ENTRIES %s %.17g\n", path.c_str(), me->entries());
    if (!me->sumw2().empty()) {
      std::printf("SUMW2 %s", path.c_str());
      for (double w2 : me->sumw2())
        std::printf(" %.17g", w2);
      std::printf("\n");
    }
  }
  return status;
}
