// Runs the SimHitDumper plugin against the CMSSW stand-in (../cmssw_stub_api.h) as cmsRun runs
// a one-module: one instance, the job's events in order, endJob at the end.  Used by
// tests/test_cmssw_jobs.py for what the dumper reports about hits it cannot use.
//
//   simhitdumper_job --events E [--orphans F] [--no-geometry] [--no-hits] [--set Name=value ...]
//       prints "GENERATED <hits> <hits on unknown DetIds>" on stdout; the plugin's MessageLogger
//       output goes to stderr; exit 3 when the job throws (the exception's text on stderr).
// The events, geometry and options are those of bxhistogram_job (events.h).

#include "SimTracker/SiPhase2TimingCalibration/plugins/SimHitDumper.cc"
#include "events.h"

#include <cstdio>
#include <string>
#include <vector>

using namespace drivers;

int main(int argc, char** argv) {
  edm::ConfigurationDescriptions descriptions;
  SimHitDumper::fillDescriptions(descriptions);
  const edm::ParameterSetDescription& desc = descriptions.described().at(0).second;

  int nEvents = 20;
  double orphans = 0.;
  bool noGeometry = false, noHits = false;
  std::vector<std::string> assignments;
  for (int a = 1; a < argc; a++) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string { return a + 1 < argc ? argv[++a] : ""; };
    if (arg == "--events")
      nEvents = std::stoi(next());
    else if (arg == "--orphans")
      orphans = std::stod(next());
    else if (arg == "--no-geometry")
      noGeometry = true;
    else if (arg == "--no-hits")
      noHits = true;
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

  const std::vector<Module> modules = makeModules();
  const Setup jobSetup(modules, noGeometry);
  int status = 0;
  try {
    SimHitDumper dumper(pset);
    edm::one::EDAnalyzer<edm::one::SharedResources>& module = dumper;  // the framework calls through the base
    const bool mixing = pset.getParameter<bool>("UseMixing");
    for (int event = 0; event < nEvents; event++)
      module.analyze(makeEvent(event, modules, orphans, mixing, noHits, {}, edm::StreamID()), jobSetup.eventSetup);
    module.endJob();
  } catch (const cms::Exception& e) {
    std::fprintf(stderr, "EXCEPTION %s\n", e.what());
    status = 3;
  }
  std::printf("GENERATED %lld %lld\n", noHits ? 0LL : generatedHits.load(), noHits ? 0LL : generatedOrphans.load());
  return status;
}
