// Compile-only stand-in for the subset of the CMSSW 12_5 C++ API that the plugins of
// cmssw/SiPhase2TimingCalibration use.  CMSSW cannot be installed here; these declarations
// (signatures as in CMSSW, no behaviour) let g++ -fsyntax-only check that the plugins are
// well-formed C++ against that API.  It cannot prove the API itself: only a scram build can.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

// ---- CLHEP
namespace CLHEP {
  class HepRandomEngine {};
  struct RandFlat {
    static double shoot(HepRandomEngine*, double a, double b);
  };
  constexpr double c_light = 299.792458, ns = 1., cm = 10.;
}  // namespace CLHEP

// ---- geometry and data formats
template <class T>
struct Point3DBase {
  T x() const;
  T y() const;
  T z() const;
  T mag() const;
  T perp() const;
};
using GlobalPoint = Point3DBase<float>;
using LocalPoint = Point3DBase<float>;
struct Surface {
  GlobalPoint toGlobal(const LocalPoint&) const;
};
class DetId {
public:
  enum Detector { Tracker = 1, Muon = 2 };
  explicit DetId(uint32_t);
  Detector det() const;
  int subdetId() const;
  uint32_t rawId() const;
};
struct StripSubdetector {
  enum SubDetector { TIB = 3, TID = 4, TOB = 5, TEC = 6 };
};
class GeomDet {
public:
  const Surface& surface() const;
};
class TrackerGeometry {
public:
  const GeomDet* idToDet(DetId) const;
};
struct TrackerDigiGeometryRecord {};
class EncodedEventId {
public:
  uint32_t rawId() const;
  int bunchCrossing() const;
};
struct LorentzVector {
  double Pt() const;
};
class SimTrack {
public:
  EncodedEventId eventId() const;
  unsigned int trackId() const;
  const LorentzVector& momentum() const;
};
class PSimHit {
public:
  unsigned int detUnitId() const;
  int trackId() const;
  EncodedEventId eventId() const;
  LocalPoint entryPoint() const;
  LocalPoint exitPoint() const;
  LocalPoint localPosition() const;
  float timeOfFlight() const;
  float energyLoss() const;
};
template <class T>
class CrossingFrame {};
template <class T>
class MixCollection {
public:
  struct MixItr {
    const T& operator*() const;
    const T* operator->() const;
    MixItr& operator++();
    bool operator!=(const MixItr&) const;
  };
  explicit MixCollection(const CrossingFrame<T>*);
  MixItr begin();
  MixItr end();
};

// ---- framework
namespace edm {
  using SimTrackContainer = std::vector<SimTrack>;
  using PSimHitContainer = std::vector<PSimHit>;
  class StreamID {};
  class Run {};
  class InputTag {
  public:
    InputTag(const std::string& label, const std::string& instance = "", const std::string& process = "");
    const std::string& label() const;
  };
  class ESInputTag {
  public:
    ESInputTag(const std::string& module, const std::string& data);
  };
  template <class T>
  class EDGetTokenT {};
  template <class T, class R>
  class ESGetToken {};
  template <class T>
  class Handle {
  public:
    bool isValid() const;
    const T* product() const;
    const T& operator*() const;
    const T* operator->() const;
  };
  class ParameterSet {
  public:
    template <class T>
    T getParameter(const std::string&) const;
  };
  class ConsumesCollector {
  public:
    template <class T>
    EDGetTokenT<T> consumes(const InputTag&);
  };
  class Event {
  public:
    StreamID streamID() const;
    template <class T>
    bool getByToken(const EDGetTokenT<T>&, Handle<T>&) const;
  };
  class EventSetup {
  public:
    template <class T, class R>
    const T& getData(const ESGetToken<T, R>&) const;
  };
  class RandomNumberGenerator {
  public:
    virtual CLHEP::HepRandomEngine& getEngine(const StreamID&) = 0;
  };
  template <class T>
  class Service {
  public:
    bool isAvailable() const;
    T* operator->() const;
  };
  struct LogStream {
    explicit LogStream(const std::string&);
    template <class T>
    LogStream& operator<<(const T&);
  };
  using LogInfo = LogStream;
  using LogVerbatim = LogStream;
  class ModuleBase {
  public:
    ConsumesCollector consumesCollector();
    template <class T, class R>
    ESGetToken<T, R> esConsumes(const ESInputTag&);
    void usesResource(const std::string&);
  };
  namespace one {
    struct SharedResources {};
    template <class... T>
    class EDAnalyzer : public ModuleBase {
    public:
      virtual ~EDAnalyzer() = default;
      virtual void analyze(const Event&, const EventSetup&) = 0;
    };
  }  // namespace one
}  // namespace edm

namespace cms {
  class Exception {
  public:
    explicit Exception(const std::string& category);
    template <class T>
    Exception& operator<<(const T&);
  };
}  // namespace cms

// ---- DQM
class MonitorElementStub {
public:
  void Fill(double);
  void Fill(double, double);
  void Fill(long long);
  void Fill(std::string const&);
};
class DQMStoreStub {
public:
  class IBooker {
  public:
    void cd();
    void setCurrentFolder(const std::string&);
    MonitorElementStub* book1D(const std::string&, const std::string&, int, double, double);
    MonitorElementStub* book2D(const std::string&, const std::string&, int, double, double, int, double, double);
  };
};
class DQMEDAnalyzer : public edm::ModuleBase {
public:
  typedef DQMStoreStub DQMStore;
  typedef MonitorElementStub MonitorElement;
  virtual ~DQMEDAnalyzer() = default;
  virtual void bookHistograms(DQMStore::IBooker&, edm::Run const&, edm::EventSetup const&) = 0;
  virtual void analyze(edm::Event const&, edm::EventSetup const&) {}
};

// ---- ROOT / TFileService
class TTree {
public:
  TTree(const char*, const char*);
  void Branch(const char*, void*, const char*);
  int Fill();
};
class TFileService {
public:
  static const std::string kSharedResource;
  template <class T, class... A>
  T* make(A&&...);
};

#define DEFINE_FWK_MODULE(type) static_assert(sizeof(type) > 0, #type)
