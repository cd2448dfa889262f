// Standalone driver of CBCTimingModel.h: the analyzer's own loop without CMSSW.
//
// Why: CMSSW cannot run in CI, yet the header must be proven identical to the deployed logic
// (golden test vectors) and to the Python emulator, and it is the speed baseline of
// benchmarks/bench_cbcsim.py.  tests/helpers/cxx_cbc.py compiles and drives it.
//
// Usage:
//   cbc_standalone --model compat|exact --hits N --input FILE|- --out FILE
//                  (--range MIN MAX STEP | --delays FILE)
//                  [--delays-out FILE] [--pulse-table-out FILE]
//
// --input: raw little-endian float32 arrays charge[N], toa[N], threshold[N], concatenated
//          ('-' reads stdin).  threshold is per hit so that per-module smearing is expressed
//          by the caller.
// --delays: raw float64 delays; --range: the analyzer's accumulated delay list (§4 quirk).
// --out: raw int64 sampled[D][13], latched[D][13], attribution_sampled[D][7],
//        attribution_latched[D][7] (ROOT bins incl. under/overflow).
// --delays-out: float64 delays used; --pulse-table-out: float64 S(k), k = 0..99, per delay.
// Prints "compute_seconds <s>" (the hit loop only, not I/O) and "delays <D>" on stdout.

#include "../../interface/CBCTimingModel.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

  [[noreturn]] void fail(const std::string& message) {
    std::cerr << "cbc_standalone: " << message << std::endl;
    std::exit(2);
  }

  template <class T>
  void readExactly(std::FILE* stream, std::vector<T>& values, const char* what) {
    const std::size_t got = std::fread(values.data(), sizeof(T), values.size(), stream);
    if (got != values.size())
      fail(std::string("short read of ") + what + ": got " + std::to_string(got) + " of " +
           std::to_string(values.size()) + " values");
  }

  template <class T>
  void writeAll(std::ofstream& out, const std::vector<T>& values) {
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(T)));
  }

  std::vector<double> readDelays(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
      fail("cannot open delays file " + path);
    const std::streamsize size = in.tellg();
    if (size <= 0 || size % sizeof(double) != 0)
      fail("delays file " + path + " must hold a positive number of float64 values");
    std::vector<double> delays(static_cast<std::size_t>(size) / sizeof(double));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(delays.data()), size);
    return delays;
  }

  void writeFile(const std::string& path, const std::vector<std::vector<std::int64_t>*>& blocks) {
    std::ofstream out(path, std::ios::binary);
    if (!out)
      fail("cannot write " + path);
    for (const auto* block : blocks)
      writeAll(out, *block);
  }

}  // namespace

int main(int argc, char** argv) {
  std::string model = "compat", input, outPath, delaysPath, delaysOut, pulseOut;
  long long nHits = -1;
  bool haveRange = false;
  double rangeMin = 0, rangeMax = 0, rangeStep = 0;

  for (int a = 1; a < argc; a++) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string {
      if (a + 1 >= argc)
        fail("missing value after " + arg);
      return argv[++a];
    };
    if (arg == "--model")
      model = next();
    else if (arg == "--hits")
      nHits = std::stoll(next());
    else if (arg == "--input")
      input = next();
    else if (arg == "--out")
      outPath = next();
    else if (arg == "--delays")
      delaysPath = next();
    else if (arg == "--delays-out")
      delaysOut = next();
    else if (arg == "--pulse-table-out")
      pulseOut = next();
    else if (arg == "--range") {
      rangeMin = std::stod(next());
      rangeMax = std::stod(next());
      rangeStep = std::stod(next());
      haveRange = true;
    } else
      fail("unknown argument " + arg);
  }
  if (nHits < 0 || input.empty() || outPath.empty())
    fail("--hits, --input and --out are required");
  if (haveRange == !delaysPath.empty())
    fail("give exactly one of --range MIN MAX STEP or --delays FILE");

  cbc_timing::Model cbcModel = cbc_timing::Model::Compat;
  std::vector<double> delays;
  try {
    cbcModel = cbc_timing::parseModel(model);
    delays = haveRange ? cbc_timing::scanDelays(rangeMin, rangeMax, rangeStep) : readDelays(delaysPath);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }

  const std::size_t n = static_cast<std::size_t>(nHits);
  std::vector<float> charge(n), toa(n), threshold(n);
  std::FILE* stream = input == "-" ? stdin : std::fopen(input.c_str(), "rb");
  if (!stream)
    fail("cannot open input " + input);
  readExactly(stream, charge, "charge");
  readExactly(stream, toa, "toa");
  readExactly(stream, threshold, "threshold");
  if (stream != stdin)
    std::fclose(stream);

  const cbc_timing::BXScan scan(delays, cbcModel);
  cbc_timing::BXCounts counts(delays.size());

  const auto start = std::chrono::steady_clock::now();
  for (std::size_t h = 0; h < n; h++)
    scan.analyzeHit(charge[h], toa[h], threshold[h], counts);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

  writeFile(outPath, {&counts.sampled, &counts.latched, &counts.attributionSampled, &counts.attributionLatched});
  if (!delaysOut.empty()) {
    std::ofstream out(delaysOut, std::ios::binary);
    writeAll(out, delays);
  }
  if (!pulseOut.empty()) {
    std::ofstream out(pulseOut, std::ios::binary);
    for (std::size_t d = 0; d < delays.size(); d++) {
      const auto& table = scan.pulse(d).table();
      out.write(reinterpret_cast<const char*>(table.data()), static_cast<std::streamsize>(table.size() * sizeof(double)));
    }
  }
  std::printf("compute_seconds %.9f\ndelays %zu\n", elapsed.count(), delays.size());
  return 0;
}
