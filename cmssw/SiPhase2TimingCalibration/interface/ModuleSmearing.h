#ifndef SimTracker_SiPhase2TimingCalibration_ModuleSmearing_h
#define SimTracker_SiPhase2TimingCalibration_ModuleSmearing_h

// Per-module threshold and time-of-flight smearing that does not depend on threads.
//
// Why not a random engine: the deployed analyzer drew a module's offset from its stream's
// engine (RandomNumberGeneratorService) at the module's first hit, which gives a module
// different offsets in different streams, and values that depend on which events a stream
// happened to see first: the histograms then depend on the number of threads.
// Phase2TrackerBXHistogram is now a global module analysing events concurrently, where any
// "first hit" is a race.
//
// Here the offset of a module is a pure function of (seed, module key, quantity): a
// counter-based generator (SplitMix64 finaliser, the mixing function of Steele, Lea and
// Flood 2014) turns the triple into a uniform double.  Every stream, every event order and
// every thread count computes the same value, with no shared state and no lock; it is
// equivalent to drawing every module's offsets once at the start of the job.  The seed is a
// job parameter (recorded in the output), so a job is reproducible from its output file.
//
// Header-only, C++17 standard library only, so that the standalone tests compile it.

#include <cstdint>
#include <stdexcept>
#include <string>

namespace cbc_timing {

  // What identifies "a module" for the smearing.
  enum class SmearingKey {
    Module,  // the module (TrackerTopology::stack): both sensors of a 2S/PS module share it
    Sensor   // the sensor DetId, as the deployed analyzer did (two draws per 2S/PS module)
  };

  inline SmearingKey parseSmearingKey(const std::string& name) {
    if (name == "module")
      return SmearingKey::Module;
    if (name == "sensor")
      return SmearingKey::Sensor;
    throw std::invalid_argument("smearing key '" + name + "' not understood (allowed: module, sensor)");
  }

  // The smeared quantities get independent draws for the same module.
  enum class SmearedQuantity : std::uint64_t { Threshold = 1, TimeOfFlight = 2 };

  // SplitMix64 finaliser: a bijection of 64-bit words whose outputs pass BigCrush when fed a
  // counter; used here as a keyed hash.
  inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }

  class ModuleSmearing {
  public:
    ModuleSmearing(std::uint64_t seed, double thresholdWidthBarrel, double thresholdWidthEndcap, double tofWidth)
        : seed_(seed),
          thresholdWidthBarrel_(thresholdWidthBarrel),
          thresholdWidthEndcap_(thresholdWidthEndcap),
          tofWidth_(tofWidth) {
      if (thresholdWidthBarrel < 0 || thresholdWidthEndcap < 0 || tofWidth < 0)
        throw std::invalid_argument("smearing widths must be >= 0");
    }

    // True when any offset can be non-zero.
    bool active() const { return thresholdWidthBarrel_ > 0 || thresholdWidthEndcap_ > 0 || tofWidth_ > 0; }

    // Threshold offset (electrons) of the module `key`: uniform in [-w, w), w by region.
    float thresholdShift(std::uint32_t key, bool barrel) const {
      return shift(key, SmearedQuantity::Threshold, barrel ? thresholdWidthBarrel_ : thresholdWidthEndcap_);
    }

    // Time-of-flight offset (ns) of the module `key`: uniform in [-w, w).
    float tofShift(std::uint32_t key) const { return shift(key, SmearedQuantity::TimeOfFlight, tofWidth_); }

    std::uint64_t seed() const { return seed_; }

    // Uniform in [0, 1) with 53 random bits, a function of (seed, key, quantity) only.
    static double uniform(std::uint64_t seed, std::uint32_t key, SmearedQuantity quantity) {
      const std::uint64_t word =
          splitmix64(splitmix64(seed ^ (static_cast<std::uint64_t>(quantity) << 32)) ^ static_cast<std::uint64_t>(key));
      return static_cast<double>(word >> 11) * 0x1.0p-53;
    }

  private:
    // Same arithmetic as CLHEP::RandFlat::shoot(engine, -w, w) = -w + 2w u, rounded to float
    // as the deployed analyzer stored it.
    float shift(std::uint32_t key, SmearedQuantity quantity, double width) const {
      if (!(width > 0.))
        return 0.f;
      return static_cast<float>(-width + 2. * width * uniform(seed_, key, quantity));
    }

    std::uint64_t seed_;
    double thresholdWidthBarrel_;
    double thresholdWidthEndcap_;
    double tofWidth_;
  };

}  // namespace cbc_timing

#endif
