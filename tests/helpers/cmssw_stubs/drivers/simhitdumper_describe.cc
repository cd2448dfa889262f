// Prints SimHitDumper's fillDescriptions() (see describe.h), for tests/test_cmssw_jobs.py.
#include "SimTracker/SiPhase2TimingCalibration/plugins/SimHitDumper.cc"
#include "describe.h"

int main() {
  edm::ConfigurationDescriptions descriptions;
  SimHitDumper::fillDescriptions(descriptions);
  return printDescriptions(descriptions);
}
