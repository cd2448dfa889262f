#ifndef SimTracker_SiPhase2TimingCalibration_CBCTimingModel_h
#define SimTracker_SiPhase2TimingCalibration_CBCTimingModel_h

// CBC hit-detection logic of the Phase2TrackerBXHistogram analyzer (physics.md §2-§6).
//
// Header-only and free of CMSSW on purpose: the same code runs inside cmsRun (through
// plugins/Phase2TrackerBXHistogram.cc) and in a g++-compiled standalone driver
// (test/standalone/cbc_standalone.cc) that the Python tests compare, bit for bit, with the
// golden test vectors and with the Python emulator.  Only the C++17 standard library.
//
// The float32/float64 mix is part of the contract, not an accident: the deployed analyzer
// stores charge, time of arrival and threshold as float, shifts the time by the BX in float,
// accumulates the latched sampling instants in float, and evaluates the pulse and the
// product with the charge in double.  Changing any of these changes which hits fire.
// Do not compile with -ffast-math, and keep FMA contraction off (-ffp-contract=off) if the
// target ISA has FMA: a fused multiply-add can flip a comparison with the threshold.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cbc_timing {

  // ------------------------------------------------------------------ constants
  constexpr int kBXRange = 5;                  // relative bunch crossings -5 .. +5
  constexpr int kNBX = 2 * kBXRange + 1;       // 11
  constexpr double kBXTime = 25.;              // ns
  constexpr float kDeadTime = 2.7f;            // first latched sampling instant in a BX (ns)
  constexpr int kCompatTableLength = 100;      // compat pulse: whole ns 0..99, zero beyond
  // Energy loss -> electrons.  A float, as in the deployed analyzer: q = float(eloss) / 3.61e-9f.
  constexpr float kGeVPerElectron = 3.61e-9f;

  // Histogram binnings of physics.md §6 (ROOT convention: bin 0 underflow, n+1 overflow).
  constexpr int kBXNBins = kNBX;  // TH1F(11, -5.5, 5.5)
  constexpr double kBXLow = -kBXRange - 0.5;
  constexpr double kBXHigh = kBXRange + 0.5;
  constexpr int kBXBinsWithFlows = kBXNBins + 2;  // 13
  constexpr int kAttrNBins = 5;                   // TH1(5, -0.5, 4.5)
  constexpr double kAttrLow = -0.5;
  constexpr double kAttrHigh = 4.5;
  constexpr int kAttrBinsWithFlows = kAttrNBins + 2;  // 7

  // ------------------------------------------------------------------ model choice
  enum class Model {
    Compat,  // deployed behaviour: pulse tabulated at whole ns (integer division), cut at 100 ns
    Exact    // continuous pulse, no cut; everything else shared
  };

  inline Model parseModel(const std::string& name) {
    if (name == "compat")
      return Model::Compat;
    if (name == "exact")
      return Model::Exact;
    throw std::invalid_argument("CBC model '" + name + "' not understood (allowed: compat, exact)");
  }

  inline const char* modelName(Model model) { return model == Model::Compat ? "compat" : "exact"; }

  // ------------------------------------------------------------------ pulse shape (§2)
  struct PulseShapeParameters {
    double tau = 16.043703;
    double r = 99.999857;
    double theta = 40.571650;  // radians, used as given
    int nTerms = 2;
    double amplitude = 1.2459094;
  };

  // CBC3 polar-expansion pulse S(x) for a pulse starting at `delay`.
  //
  // The x-independent factors are computed once, with exactly the expressions (and the
  // evaluation order) of the deployed cbc3PulsePolarExpansion/signalShape, so that the
  // values are bit-identical to it while the per-sample cost stays small.
  class PulseShape {
  public:
    explicit PulseShape(double delay, const PulseShapeParameters& p = PulseShapeParameters())
        : delay_(delay), tau_(p.tau), amplitude_(p.amplitude) {
      // term i needs (i + 2)!: nTerms - 1 + 2 <= kMaxFactorial
      if (p.nTerms < 1 || p.nTerms > kMaxFactorial - 1)
        throw std::invalid_argument("the number of terms n of the pulse must be 1.." +
                                    std::to_string(kMaxFactorial - 1) + ", got " + std::to_string(p.nTerms));
      for (int i = 0; i < p.nTerms; i++) {
        Term term;
        double angularTerm = 0;
        term.rTerm = std::pow(p.r, i) / (std::pow(p.tau, 2. * i) * factorial(i + 2));
        for (int j = 0; j <= i; j++) {
          angularTerm += std::pow(std::cos(p.theta), (double)(i - j)) * std::pow(std::sin(p.theta), (double)j);
          term.a.push_back(aScalingConstant(i, j));
          term.tauPow.push_back(std::pow(p.tau, (double)j));
        }
        term.angularTerm = angularTerm;
        terms_.push_back(term);
      }
    }

    double delay() const { return delay_; }

    double operator()(double x) const {
      const double xx = x - delay_;
      if (xx < 0)
        return 0;
      // The deployed code writes std::pow(xx / tau, 2.), which g++ folds to y * y when
      // optimising; writing the product keeps the value independent of the flags (-O0 too).
      const double y = xx / tau_;
      return amplitude_ * (std::exp(-xx / tau_) * (y * y) * polarExpansion(xx));
    }

  private:
    struct Term {
      double rTerm = 0;
      double angularTerm = 0;
      std::vector<double> a;       // a(i, j)
      std::vector<double> tauPow;  // tau^j
    };

    // n! from an exact table: the values are integers, and a libm's tgamma need not return
    // them exactly (its last bits differ between implementations), which would break the
    // bit-equality of the pulse with the deployed values.  20! is the largest that a double
    // holds exactly enough for the coefficients here (n <= nTerms + 1).
    static double factorial(int n) {
      static constexpr double kFactorials[] = {1.,
                                               1.,
                                               2.,
                                               6.,
                                               24.,
                                               120.,
                                               720.,
                                               5040.,
                                               40320.,
                                               362880.,
                                               3628800.,
                                               39916800.,
                                               479001600.,
                                               6227020800.,
                                               87178291200.,
                                               1307674368000.,
                                               20922789888000.,
                                               355687428096000.,
                                               6402373705728000.,
                                               121645100408832000.,
                                               2432902008176640000.};
      if (n < 0 || n > kMaxFactorial)
        throw std::invalid_argument("factorial of " + std::to_string(n) + " is outside the table (0.." +
                                    std::to_string(kMaxFactorial) + ")");
      return kFactorials[n];
    }
    static constexpr int kMaxFactorial = 20;

    // a(N,k) = (-1)^k N! (N+2)! / ((N-k)! (N+2-k)! k!)
    static double aScalingConstant(int N, int k) {
      return std::pow(-1, (double)k) * factorial(N) * factorial(N + 2) /
             (factorial(N - k) * factorial(N + 2 - k) * factorial(k));
    }

    double polarExpansion(double xx) const {
      double fN = 0;
      for (const Term& term : terms_) {
        double temporalTerm = 0;
        const int i = static_cast<int>(term.a.size()) - 1;
        for (int j = 0; j <= i; j++)
          temporalTerm += term.a[j] * std::pow(xx, (double)(i - j)) * term.tauPow[j];
        fN += term.rTerm * term.angularTerm * temporalTerm;
      }
      return fN;
    }

    double delay_;
    double tau_;
    double amplitude_;
    std::vector<Term> terms_;
  };

  // ------------------------------------------------------------------ pulse height (§3)
  // h(x) for one delay and one model.
  class PulseHeight {
  public:
    PulseHeight(double delay, Model model, const PulseShapeParameters& p = PulseShapeParameters())
        : model_(model), shape_(delay, p) {
      // quirk (compat): the deployed analyzer fills its table at i / step with an integer
      // division, so only whole nanoseconds are ever tabulated.
      for (int k = 0; k < kCompatTableLength; k++)
        table_[k] = shape_(static_cast<double>(k));
    }

    double operator()(double x) const {
      if (model_ == Model::Compat) {
        // h(x) = S(floor(x)) for 0 < x < 100; x == 0 and x >= 100 give 0 (pulse cut).
        if (!(x > 0.) || !(x < kCompatTableLength))
          return 0.;
        return table_[static_cast<int>(x)];  // x > 0, so truncation is floor
      }
      return x > 0. ? shape_(x) : 0.;
    }

    Model model() const { return model_; }
    double delay() const { return shape_.delay(); }
    const std::array<double, kCompatTableLength>& table() const { return table_; }

  private:
    Model model_;
    PulseShape shape_;
    std::array<double, kCompatTableLength> table_;
  };

  // ------------------------------------------------------------------ delays (§4)
  // quirk (kept in both models): accumulated doubles, the last value may exceed max
  // (0..50 by 0.1 gives 501 values ending at 50.00000000000044).
  inline std::vector<double> scanDelays(double offsetMin, double offsetMax, double offsetStep) {
    if (!(offsetStep > 0.))
      throw std::invalid_argument("OffsetStep must be > 0, got " + std::to_string(offsetStep));
    std::vector<double> delays;
    double current = offsetMin;
    delays.push_back(current);
    while (current <= offsetMax) {
      current += offsetStep;
      delays.push_back(current);
    }
    return delays;
  }

  // Histogram name suffix: std::to_string (6 decimals) with '.' -> 'p', e.g. "12p300000".
  inline std::string offsetLabel(double delay) {
    std::string label = std::to_string(delay);
    for (char& c : label)
      if (c == '.')
        c = 'p';
    return label;
  }

  // ------------------------------------------------------------------ detection (§5)
  // t' = t_a - bx * 25 in float32 arithmetic.
  inline float shiftedArrival(float toa, int bx) { return toa - static_cast<float>(bx * 25); }

  // Sampled mode: the pulse at the end of the BX window, 25 - t' evaluated in double.
  inline bool sampledFires(const PulseHeight& h, float charge, float shiftedToa, float threshold) {
    const double samplingTime = kBXTime;
    return h(samplingTime - shiftedToa) * charge > threshold;
  }

  // Latched mode: the comparator output is sampled at u_j = -t' + i_j (float32), i_j = 2.7f,
  // 3.7f, ... while <= 25 (23 instants); it fires on a rising edge between two consecutive
  // instants of the same window.  The first instant can never fire (no previous sample), so a
  // crossing between 24.7 ns and the next window's first instant is never latched: a known
  // property of the deployed logic, kept in both models.
  inline bool latchedFires(const PulseHeight& h, float charge, float shiftedToa, float threshold) {
    bool lastAbove = true;
    for (float i = kDeadTime; i <= static_cast<float>(kBXTime); i++) {
      const float u = -shiftedToa + i;
      const bool above = h(u) * charge > threshold;
      if (!lastAbove && above)
        return true;
      lastAbove = above;
    }
    return false;
  }

  // quirk (kept): the BX is filled at bx - 1.5, so bx = 0 lands in the bin centred at -1,
  // bx = -5 in the underflow, and the last bin stays empty.
  inline double fillValue(int bx) { return bx - 0.5 - 1; }

  // TAxis::FindFixBin for a fixed-width axis: 0 underflow, nbins + 1 overflow.
  inline int findFixBin(double x, int nbins, double low, double high) {
    if (x < low)
      return 0;
    if (!(x < high))
      return nbins + 1;
    return 1 + static_cast<int>(nbins * (x - low) / (high - low));
  }

  // ------------------------------------------------------------------ the analyzer loop
  // Per job: the delays and one PulseHeight per delay.  analyzeHit() runs the analyzer's own
  // loop structure (per delay, per BX, latched samples) for one selected hit and reports to
  // a sink, which is either the plain arrays below (standalone driver) or the DQM monitor
  // elements (Phase2TrackerBXHistogram).  A sink provides
  //   void fire(std::size_t delayIndex, int bx, bool sampled, bool latched);  // every bx
  //   void attribution(std::size_t delayIndex, int nSampled, int nLatched);   // once per delay
  class BXScan {
  public:
    BXScan(std::vector<double> delays, Model model, const PulseShapeParameters& p = PulseShapeParameters())
        : delays_(std::move(delays)), model_(model) {
      pulses_.reserve(delays_.size());
      for (double d : delays_)
        pulses_.emplace_back(d, model, p);
    }

    const std::vector<double>& delays() const { return delays_; }
    Model model() const { return model_; }
    const PulseHeight& pulse(std::size_t delayIndex) const { return pulses_[delayIndex]; }

    // charge: electrons; toa: ns, already smeared for the module; threshold: electrons,
    // already smeared for the module.
    template <class Sink>
    void analyzeHit(float charge, float toa, float threshold, Sink& sink) const {
      for (std::size_t d = 0; d < pulses_.size(); d++) {
        const PulseHeight& h = pulses_[d];
        int nSampled = 0;
        int nLatched = 0;
        for (int bx = -kBXRange; bx <= kBXRange; bx++) {
          const float shifted = shiftedArrival(toa, bx);
          const bool sampled = sampledFires(h, charge, shifted, threshold);
          const bool latched = latchedFires(h, charge, shifted, threshold);
          nSampled += sampled;
          nLatched += latched;
          sink.fire(d, bx, sampled, latched);
        }
        sink.attribution(d, nSampled, nLatched);
      }
    }

  private:
    std::vector<double> delays_;
    Model model_;
    std::vector<PulseHeight> pulses_;
  };

  // Plain-array histograms with under/overflow, row-major [delay][bin]:
  // sampled/latched as TH1F(11, -5.5, 5.5) filled at bx - 1.5 (13 bins incl. flows),
  // attribution* as TH1(5, -0.5, 4.5) of the number of BXs fired (7 bins incl. flows).
  struct BXCounts {
    explicit BXCounts(std::size_t nDelays)
        : sampled(nDelays * kBXBinsWithFlows, 0),
          latched(nDelays * kBXBinsWithFlows, 0),
          attributionSampled(nDelays * kAttrBinsWithFlows, 0),
          attributionLatched(nDelays * kAttrBinsWithFlows, 0) {}

    void fire(std::size_t d, int bx, bool isSampled, bool isLatched) {
      if (!isSampled && !isLatched)
        return;
      const int bin = findFixBin(fillValue(bx), kBXNBins, kBXLow, kBXHigh);
      if (isSampled)
        sampled[d * kBXBinsWithFlows + bin]++;
      if (isLatched)
        latched[d * kBXBinsWithFlows + bin]++;
    }

    void attribution(std::size_t d, int nSampled, int nLatched) {
      attributionSampled[d * kAttrBinsWithFlows + findFixBin(nSampled, kAttrNBins, kAttrLow, kAttrHigh)]++;
      attributionLatched[d * kAttrBinsWithFlows + findFixBin(nLatched, kAttrNBins, kAttrLow, kAttrHigh)]++;
    }

    std::vector<std::int64_t> sampled;
    std::vector<std::int64_t> latched;
    std::vector<std::int64_t> attributionSampled;
    std::vector<std::int64_t> attributionLatched;
  };

  // ------------------------------------------------------------------ selection (§1)
  // Region windows of the `subdet` parameter: r and |z| in cm, bounds inclusive.
  struct RegionWindow {
    double rMin, rMax, absZMin, absZMax;
    bool contains(double r, double absZ) const {
      return !(r < rMin || r > rMax || absZ < absZMin || absZ > absZMax);
    }
  };

  inline RegionWindow regionWindow(const std::string& subdet) {
    if (subdet == "ALL") return {0., 120., 0., 280.};
    if (subdet == "BLL") return {20., 26., 0., 6.5};
    if (subdet == "BLH") return {22., 30., 116., 122.};
    if (subdet == "BHL") return {108., 114., 0., 20.};
    if (subdet == "BHH") return {108., 114., 80., 120.};
    if (subdet == "ELL") return {22., 28., 128., 131.};
    if (subdet == "ELH") return {32., 50.5, 260., 270.};
    if (subdet == "EHL") return {93., 112., 128., 131.};
    if (subdet == "EHH") return {92., 112., 262., 268.};
    throw std::invalid_argument("Subdetector '" + subdet +
                                "' not understood (allowed: ALL BLL BLH BHL BHH ELL ELH EHL EHH)");
  }

  // Hit selection of physics.md §1, on quantities the caller extracts from the PSimHit.
  struct HitSelection {
    double ptCut;         // GeV, kept when pt >= ptCut
    RegionWindow region;  // r, |z| window of the `subdet` parameter

    // Delta rays have a very short track length: |z_entry - z_exit| must exceed 0.01 cm.
    static constexpr double kMinAbsDz = 0.01;

    bool accepts(int bunchCrossing, int trackId, float pt, float dz, double r, double absZ) const {
      return bunchCrossing == 0 && trackId > 0 && !(pt < ptCut) && std::fabs(dz) > kMinAbsDz &&
             region.contains(r, absZ);
    }
  };

}  // namespace cbc_timing

#endif
