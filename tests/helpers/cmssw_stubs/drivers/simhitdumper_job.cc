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

  CommonOptions options;
  for (int a = 1; a < argc; a++) {
    auto next = [&]() -> std::string { return a + 1 < argc ? argv[++a] : ""; };
    if (!options.parse(argv[a], next)) {
      std::fprintf(stderr, "unknown argument %s\n", argv[a]);
      return 2;
    }
  }
  const edm::ParameterSet pset = options.parameters(desc);

  const std::vector<Module> modules = makeModules();
  const Setup jobSetup(modules, options.noGeometry);
  int status = 0;
  try {
    SimHitDumper dumper(pset);
    edm::one::EDAnalyzer<edm::one::SharedResources>& module = dumper;  // the framework calls through the base
    const bool mixing = pset.getParameter<bool>("UseMixing");
    for (int event = 0; event < options.events; event++)
      module.analyze(makeEvent(event, modules, options.orphans, mixing, options.noHits, {}, edm::StreamID()),
                     jobSetup.eventSetup);
    module.endJob();
  } catch (const cms::Exception& e) {
    std::fprintf(stderr, "EXCEPTION %s\n", e.what());
    status = 3;
  }
  std::printf("GENERATED %lld %lld\n", options.noHits ? 0LL : generatedHits.load(),
              options.noHits ? 0LL : generatedOrphans.load());
  return status;
}
