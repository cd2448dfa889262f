// Stand-in for the subset of the CMSSW C++ API that the plugins of
// cmssw/SiPhase2TimingCalibration use (CMSSW cannot be installed here).
//
// Signatures follow CMSSW (12_5 .. 15_x, checked against cms-sw/cmssw); the behaviour is the
// minimum the tests need to *run* the plugins, not only compile them: a ParameterSet is a
// map, an Event holds products by "label:instance", the EventSetup holds one object per
// type, the tracker geometry is a map DetId -> (position, module type), TrackerTopology::stack
// follows the Phase-2 DetId bit layout (the two sensors of a module are stack + 1, stack + 2),
// the DQM booker keeps one monitor element per path, and MessageLogger streams are written to
// stderr as "%MSG-<severity> <category>: <text>".
//
// Where CMSSW's behaviour decides what the plugins must do, the stand-in behaves as CMSSW does,
// and says which upstream file it follows:
// - TrackerGeometry::idToDet throws cms::Exception("WrongTrackerSubDet") for an unknown DetId
//   (Geometry/TrackerGeometryBuilder/src/TrackerGeometry.cc); it never returns nullptr;
// - Event::get throws ProductNotFound for a product the event does not have
//   (FWCore/Framework/interface/Event.h: `return *result;` on a failed Handle);
// - MonitorElement::Fill takes the element's lock (DQMServices/Core/interface/
//   MonitorElement.h, accessMut), and a weighted Fill follows ROOT's TH1::Fill(x, w): the
//   first weight != 1 switches the histogram to Sumw2 unless TH1::kIsNotW is set
//   (hist/hist/src/TH1.cxx);
// - the default MessageLogger hides INFO messages (LogInfo, LogVerbatim) unless their
//   category is enabled, and shows warnings, LogPrint among them (FWCore/ParameterSet/python/
//   MessageLogger.py: cerr INFO limit 0; FWCore/MessageLogger/interface/MessageLogger.h:
//   LogPrint = Log<level::Warning, true>);
// - CLHEP/Units/Global*.h pull `using namespace CLHEP;` into the includer, as CLHEP's do;
// - DQMGlobalEDAnalyzer<H>: one instance, const dqmAnalyze with the run's histograms
//   (DQMServices/Core/interface/DQMGlobalEDAnalyzer.h); the drivers call it from several
//   threads at once.
// Anything beyond that (services, the framework's scheduling, ROOT I/O) is not here; only
// `scram b` in a release proves the real API.
#pragma once
#include <any>
#include <cmath>
#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

// ---- CLHEP
namespace CLHEP {
  class HepRandomEngine {};
  constexpr double c_light = 299.792458, ns = 1., cm = 10.;
}  // namespace CLHEP

// ---- geometry and data formats
template <class T>
struct Point3DBase {
  T x_ = 0, y_ = 0, z_ = 0;
  Point3DBase() = default;
  Point3DBase(T x, T y, T z) : x_(x), y_(y), z_(z) {}
  T x() const { return x_; }
  T y() const { return y_; }
  T z() const { return z_; }
  T mag() const { return std::sqrt(x_ * x_ + y_ * y_ + z_ * z_); }
  T perp() const { return std::sqrt(x_ * x_ + y_ * y_); }
};
using GlobalPoint = Point3DBase<float>;
using LocalPoint = Point3DBase<float>;
struct Surface {
  GlobalPoint origin;  // no rotation in the stand-in: global = origin + local
  GlobalPoint toGlobal(const LocalPoint& p) const {
    return GlobalPoint(origin.x() + p.x(), origin.y() + p.y(), origin.z() + p.z());
  }
};
class DetId {
public:
  enum Detector { Tracker = 1, Muon = 2 };
  DetId() = default;
  explicit DetId(uint32_t id) : id_(id) {}
  Detector det() const { return Detector((id_ >> 28) & 0xF); }
  int subdetId() const { return static_cast<int>((id_ >> 25) & 0x7); }
  uint32_t rawId() const { return id_; }

private:
  uint32_t id_ = 0;
};
struct StripSubdetector {
  enum SubDetector { TIB = 3, TID = 4, TOB = 5, TEC = 6 };
};
class GeomDet {
public:
  explicit GeomDet(GlobalPoint origin) { surface_.origin = origin; }
  const Surface& surface() const { return surface_; }

private:
  Surface surface_;
};
class TrackerGeometry;
namespace cms {
  class Exception;
}
class TrackerGeometry {
public:
  enum class ModuleType { UNKNOWN, Ph2PXB, Ph2PXF, Ph2PSP, Ph2PSS, Ph2SS };
  // As Geometry/TrackerGeometryBuilder/src/TrackerGeometry.cc: an unknown DetId throws.
  const GeomDet* idToDet(DetId id) const;
  ModuleType getDetectorType(DetId id) const {
    const auto found = dets_.find(id.rawId());
    return found == dets_.end() ? ModuleType::UNKNOWN : found->second.second;
  }
  // stand-in only
  void addDet(uint32_t rawId, GlobalPoint origin, ModuleType type) {
    dets_.emplace(rawId, std::make_pair(GeomDet(origin), type));
  }

private:
  std::map<uint32_t, std::pair<GeomDet, ModuleType>> dets_;
};
// Phase-2 Outer Tracker: the two sensors of a module are numbered stack + 1 (lower) and
// stack + 2 (upper); stack() returns 0 for a DetId that is not a stacked sensor.
class TrackerTopology {
public:
  uint32_t stack(const DetId& id) const {
    if (id.subdetId() != StripSubdetector::TOB && id.subdetId() != StripSubdetector::TID)
      return 0;
    const uint32_t sensor = id.rawId() & 0x3;
    return sensor == 0 ? 0 : id.rawId() - sensor;
  }
};
struct TrackerDigiGeometryRecord {};
struct TrackerTopologyRcd {};
class EncodedEventId {
public:
  EncodedEventId() = default;
  EncodedEventId(int bunchCrossing, int event)
      : id_((static_cast<uint32_t>(bunchCrossing) << 16) | (static_cast<uint32_t>(event) & 0xFFFF)) {}
  uint32_t rawId() const { return id_; }
  int bunchCrossing() const { return static_cast<int16_t>(id_ >> 16); }

private:
  uint32_t id_ = 0;
};
struct LorentzVector {
  double pt = 0;
  double Pt() const { return pt; }
};
class SimTrack {
public:
  SimTrack(EncodedEventId event, unsigned int trackId, double pt) : event_(event), trackId_(trackId) {
    momentum_.pt = pt;
  }
  EncodedEventId eventId() const { return event_; }
  unsigned int trackId() const { return trackId_; }
  const LorentzVector& momentum() const { return momentum_; }

private:
  EncodedEventId event_;
  unsigned int trackId_;
  LorentzVector momentum_;
};
class PSimHit {
public:
  PSimHit(unsigned int detUnit, int trackId, EncodedEventId event, LocalPoint entry, LocalPoint exit, float tof,
          float energyLoss)
      : detUnit_(detUnit), trackId_(trackId), event_(event), entry_(entry), exit_(exit), tof_(tof), eloss_(energyLoss) {}
  unsigned int detUnitId() const { return detUnit_; }
  int trackId() const { return trackId_; }
  EncodedEventId eventId() const { return event_; }
  LocalPoint entryPoint() const { return entry_; }
  LocalPoint exitPoint() const { return exit_; }
  LocalPoint localPosition() const {
    return LocalPoint((entry_.x() + exit_.x()) / 2, (entry_.y() + exit_.y()) / 2, (entry_.z() + exit_.z()) / 2);
  }
  float timeOfFlight() const { return tof_; }
  float energyLoss() const { return eloss_; }

private:
  unsigned int detUnit_;
  int trackId_;
  EncodedEventId event_;
  LocalPoint entry_, exit_;
  float tof_, eloss_;
};
template <class T>
class CrossingFrame {
public:
  std::vector<T> items;  // stand-in: the mixed objects, in order
};
template <class T>
class MixCollection {
public:
  using MixItr = typename std::vector<T>::const_iterator;
  explicit MixCollection(const CrossingFrame<T>* frame) : frame_(frame) {}
  MixItr begin() { return frame_->items.begin(); }
  MixItr end() { return frame_->items.end(); }

private:
  const CrossingFrame<T>* frame_;
};

// ---- exceptions
namespace cms {
  class Exception : public std::exception {
  public:
    explicit Exception(const std::string& category) : category_(category) {}
    template <class T>
    Exception& operator<<(const T& value) {
      std::ostringstream out;
      out << value;
      message_ += out.str();
      return *this;
    }
    const char* what() const noexcept override {
      full_ = "[" + category_ + "] " + message_;
      return full_.c_str();
    }
    const std::string& category() const { return category_; }
    std::string message() const { return message_; }

  private:
    std::string category_, message_;
    mutable std::string full_;
  };
}  // namespace cms

inline const GeomDet* TrackerGeometry::idToDet(DetId s) const {
  const auto found = dets_.find(s.rawId());
  if (found == dets_.end())
    throw cms::Exception("WrongTrackerSubDet")
        << "Invalid DetID: no GeomDetUnit associated with raw ID " << s.rawId() << " of subdet ID " << s.subdetId();
  return &found->second.first;
}

// ---- framework
namespace edm {
  using SimTrackContainer = std::vector<SimTrack>;
  using PSimHitContainer = std::vector<PSimHit>;
  class StreamID {
  public:
    explicit StreamID(unsigned int v = 0) : value_(v) {}
    unsigned int value() const { return value_; }

  private:
    unsigned int value_;
  };
  class Run {};
  class InputTag {
  public:
    InputTag() = default;
    InputTag(const std::string& label, const std::string& instance = "", const std::string& process = "")
        : label_(label), instance_(instance), process_(process) {}
    const std::string& label() const { return label_; }
    const std::string& instance() const { return instance_; }
    std::string encode() const { return instance_.empty() ? label_ : label_ + ":" + instance_; }

  private:
    std::string label_, instance_, process_;
  };
  class ESInputTag {
  public:
    ESInputTag() = default;
    ESInputTag(const std::string& module, const std::string& data) : data_(module + ":" + data) {}

  private:
    std::string data_;
  };
  template <class T>
  class EDGetTokenT {
  public:
    EDGetTokenT() = default;
    explicit EDGetTokenT(std::string key) : key_(std::move(key)) {}
    const std::string& key() const { return key_; }

  private:
    std::string key_;
  };
  template <class T, class R>
  class ESGetToken {};
  template <class T>
  class Handle {
  public:
    bool isValid() const { return product_ != nullptr; }
    const T* product() const { return product_; }
    const T& operator*() const { return *product_; }
    const T* operator->() const { return product_; }
    void set(const T* product) { product_ = product; }  // stand-in only

  private:
    const T* product_ = nullptr;
  };

  class ParameterSet {
  public:
    template <class T>
    T getParameter(const std::string& name) const {
      const auto found = values_.find(name);
      if (found == values_.end())
        throw cms::Exception("Configuration") << "MissingParameter: '" << name << "'";
      if (const T* value = std::any_cast<T>(&found->second))
        return *value;
      throw cms::Exception("Configuration") << "parameter '" << name << "' has another type";
    }
    template <class T>
    void addParameter(const std::string& name, T value) {
      values_[name] = std::move(value);
    }
    bool exists(const std::string& name) const { return values_.count(name) > 0; }

  private:
    std::map<std::string, std::any> values_;
  };

  // ParameterSetDescription: the declared parameters with their defaults.
  class ParameterDescriptionBase {
  public:
    ParameterDescriptionBase(std::string name, std::string type, std::any value)
        : name_(std::move(name)), type_(std::move(type)), value_(std::move(value)) {}
    void setComment(const std::string& comment) { comment_ = comment; }
    const std::string& name() const { return name_; }
    const std::string& type() const { return type_; }
    const std::any& value() const { return value_; }

  private:
    std::string name_, type_, comment_;
    std::any value_;
  };
  template <class T>
  struct ParameterTypeName;
  template <>
  struct ParameterTypeName<std::string> {
    static constexpr const char* name = "string";
  };
  template <>
  struct ParameterTypeName<double> {
    static constexpr const char* name = "double";
  };
  template <>
  struct ParameterTypeName<bool> {
    static constexpr const char* name = "bool";
  };
  template <>
  struct ParameterTypeName<int> {
    static constexpr const char* name = "int32";
  };
  template <>
  struct ParameterTypeName<unsigned int> {
    static constexpr const char* name = "uint32";
  };
  template <>
  struct ParameterTypeName<InputTag> {
    static constexpr const char* name = "InputTag";
  };
  template <>
  struct ParameterTypeName<std::vector<InputTag>> {
    static constexpr const char* name = "VInputTag";
  };
  template <>
  struct ParameterTypeName<std::vector<double>> {
    static constexpr const char* name = "vdouble";
  };
  class ParameterSetDescription {
  public:
    template <class T, class U>
    ParameterDescriptionBase* add(const std::string& name, const U& value) {
      for (const auto& existing : parameters_)
        if (existing->name() == name)
          throw cms::Exception("LogicError") << "parameter '" << name << "' described twice";
      parameters_.push_back(std::make_shared<ParameterDescriptionBase>(name, ParameterTypeName<T>::name, T(value)));
      return parameters_.back().get();
    }
    template <class T>
    ParameterDescriptionBase* add(const std::string& name, std::initializer_list<typename T::value_type> values) {
      return add<T>(name, T(values));
    }
    const std::vector<std::shared_ptr<ParameterDescriptionBase>>& parameters() const { return parameters_; }

  private:
    std::vector<std::shared_ptr<ParameterDescriptionBase>> parameters_;
  };
  class ConfigurationDescriptions {
  public:
    void add(const std::string& label, ParameterSetDescription const& desc) { described_.emplace_back(label, desc); }
    void addWithDefaultLabel(ParameterSetDescription const& desc) { add("", desc); }
    // stand-in only: the descriptions added, with their labels ("" = default label)
    const std::vector<std::pair<std::string, ParameterSetDescription>>& described() const { return described_; }

  private:
    std::vector<std::pair<std::string, ParameterSetDescription>> described_;
  };

  class ConsumesCollector {
  public:
    template <class T>
    EDGetTokenT<T> consumes(const InputTag& tag) {
      return EDGetTokenT<T>(tag.encode());
    }
  };
  class EventID {
  public:
    explicit EventID(unsigned long long event = 0) : event_(event) {}
    unsigned long long event() const { return event_; }

  private:
    unsigned long long event_;
  };
  class Event {
  public:
    explicit Event(StreamID stream = StreamID(), unsigned long long number = 0) : stream_(stream), id_(number) {}
    StreamID streamID() const { return stream_; }
    EventID id() const { return id_; }
    // As FWCore/Framework/interface/Event.h: a product the event does not have throws
    // ProductNotFound (the framework's message names type, label and instance).
    template <class T>
    const T& get(const EDGetTokenT<T>& token) const {
      Handle<T> handle;
      if (!getByToken(token, handle))
        throw cms::Exception("ProductNotFound") << "Principal::getByToken: Found zero products matching all criteria\n"
                                                << "Looking for module label:productInstanceName " << token.key();
      return *handle;
    }
    template <class T>
    bool getByToken(const EDGetTokenT<T>& token, Handle<T>& handle) const {
      const auto found = products_.find(token.key());
      if (found == products_.end())
        return false;
      handle.set(std::any_cast<std::shared_ptr<const T>>(found->second).get());
      return true;
    }
    template <class T>
    void put(const std::string& key, T product) {  // stand-in only
      products_[key] = std::shared_ptr<const T>(std::make_shared<T>(std::move(product)));
    }

  private:
    StreamID stream_;
    EventID id_;
    std::map<std::string, std::any> products_;
  };
  class EventSetup {
  public:
    template <class T, class R>
    const T& getData(const ESGetToken<T, R>&) const {
      return *static_cast<const T*>(data_.at(std::type_index(typeid(T))));
    }
    template <class T>
    void add(const T& object) {  // stand-in only
      data_[std::type_index(typeid(T))] = &object;
    }

  private:
    std::map<std::type_index, const void*> data_;
  };

  // MessageLogger: one message per statement, written when the statement ends, as the
  // default configuration would (FWCore/ParameterSet/python/MessageLogger.py: cerr has
  // INFO.limit = 0, so INFO messages are dropped unless their category has its own limit,
  // e.g. process.MessageLogger.cerr.<category> = cms.untracked.PSet(limit = -1)).
  namespace stub {
    inline std::set<std::string>& enabledInfoCategories() {  // stand-in only: the cfg's category PSets
      static std::set<std::string> categories;
      return categories;
    }
    inline std::mutex& logMutex() {
      static std::mutex mutex;
      return mutex;
    }
  }  // namespace stub
  class LogStream {
  public:
    LogStream(const char* severity, bool info, const std::string& category)
        : severity_(severity), category_(category), shown_(!info || stub::enabledInfoCategories().count(category)) {}
    LogStream(const LogStream&) = delete;
    ~LogStream() {
      if (!shown_)
        return;
      std::lock_guard<std::mutex> lock(stub::logMutex());
      std::cerr << "%MSG-" << severity_ << " " << category_ << ": " << out_.str() << "\n";
    }
    template <class T>
    LogStream& operator<<(const T& value) {
      if (shown_)
        out_ << value;
      return *this;
    }

  private:
    const char* severity_;
    std::string category_;
    bool shown_;
    std::ostringstream out_;
  };
  // FWCore/MessageLogger/interface/MessageLogger.h: LogInfo, LogVerbatim = Info; LogWarning,
  // LogPrint = Warning (LogPrint and LogVerbatim without the message header).
  struct LogInfo : LogStream {
    explicit LogInfo(const std::string& category) : LogStream("i", true, category) {}
  };
  struct LogVerbatim : LogStream {
    explicit LogVerbatim(const std::string& category) : LogStream("v", true, category) {}
  };
  struct LogWarning : LogStream {
    explicit LogWarning(const std::string& category) : LogStream("w", false, category) {}
  };
  struct LogPrint : LogStream {
    explicit LogPrint(const std::string& category) : LogStream("p", false, category) {}
  };

  class ModuleBase {
  public:
    ConsumesCollector consumesCollector() { return ConsumesCollector(); }
    template <class T, class R>
    ESGetToken<T, R> esConsumes(const ESInputTag&) {
      return ESGetToken<T, R>();
    }
    template <class T, class R>
    ESGetToken<T, R> esConsumes() {
      return ESGetToken<T, R>();
    }
    void usesResource(const std::string&) {}
  };
  namespace one {
    struct SharedResources {};
    template <class... T>
    class EDAnalyzer : public ModuleBase {
    public:
      virtual ~EDAnalyzer() = default;
      virtual void analyze(const Event&, const EventSetup&) = 0;
      virtual void endJob() {}
    };
  }  // namespace one
}  // namespace edm

// ---- DQM
// The ROOT side of a histogram that the plugins touch: its bits (TH1::kIsNotW, see Fill).
class TH1 {
public:
  enum { kIsNotW = 1 << 11 };  // ROOT's EStatusBits: "not weighted even if filled with w != 1"
  void SetBit(unsigned bit) { bits_ |= bit; }
  bool TestBit(unsigned bit) const { return bits_ & bit; }

private:
  unsigned bits_ = 0;
};

// One monitor element: ROOT-like fixed binning with under/overflow, bin contents in double
// (the stand-in does not emulate float bins), or an int / string value.  Every access takes
// the element's lock (MonitorElement.h, accessMut).  Fill(x, w) is ROOT's TH1::Fill: the
// entry count grows by one per call, and the first weight != 1 creates the sum of squared
// weights (errors sqrt(sum w^2) from then on) unless kIsNotW is set.
class MonitorElementStub {
public:
  MonitorElementStub(std::string kind, int nx, double xlow, double xhigh, int ny = 0, double ylow = 0, double yhigh = 0)
      : kind_(std::move(kind)),
        nx_(nx),
        ny_(ny),
        xlow_(xlow),
        xhigh_(xhigh),
        ylow_(ylow),
        yhigh_(yhigh),
        contents_(static_cast<std::size_t>((nx + 2) * (ny > 0 ? ny + 2 : 1)), 0.) {}
  void Fill(double x) { Fill(x, 1.); }
  void Fill(double x, double w) {
    if (ny_ > 0) {  // a 2D element: Fill(x, y) with unit weight
      add(cell(x, w), 1.);
      return;
    }
    add(static_cast<std::size_t>(bin(x, nx_, xlow_, xhigh_)), w);
  }
  void Fill(double x, double y, double w) { add(cell(x, y), w); }
  void Fill(long long value) {
    std::lock_guard<std::mutex> lock(mutex_);
    intValue_ = value;
  }
  void Fill(std::string const& value) {
    std::lock_guard<std::mutex> lock(mutex_);
    stringValue_ = value;
  }
  TH1* getTH1() { return &th1_; }
  // stand-in only
  const std::string& kind() const { return kind_; }
  const std::vector<double>& contents() const { return contents_; }
  const std::vector<double>& sumw2() const { return sumw2_; }  // empty: errors are sqrt(contents)
  double entries() const { return entries_; }
  long long intValue() const { return intValue_; }
  const std::string& stringValue() const { return stringValue_; }
  int nx() const { return nx_; }
  int ny() const { return ny_; }
  double xlow() const { return xlow_; }
  double xhigh() const { return xhigh_; }
  double ylow() const { return ylow_; }
  double yhigh() const { return yhigh_; }

private:
  static int bin(double v, int n, double low, double high) {  // TAxis::FindFixBin
    if (v < low)
      return 0;
    if (!(v < high))
      return n + 1;
    return 1 + static_cast<int>(n * (v - low) / (high - low));
  }
  std::size_t cell(double x, double y) const {
    return static_cast<std::size_t>(bin(y, ny_, ylow_, yhigh_) * (nx_ + 2) + bin(x, nx_, xlow_, xhigh_));
  }
  void add(std::size_t i, double w) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_ += 1;
    if (sumw2_.empty() && w != 1. && !th1_.TestBit(TH1::kIsNotW))
      sumw2_ = contents_;  // TH1::Sumw2(): the unit fills so far
    if (!sumw2_.empty())
      sumw2_[i] += w * w;
    contents_[i] += w;
  }
  std::string kind_;
  int nx_, ny_;
  double xlow_, xhigh_, ylow_, yhigh_;
  std::vector<double> contents_, sumw2_;
  double entries_ = 0;
  TH1 th1_;
  std::mutex mutex_;
  long long intValue_ = 0;
  std::string stringValue_;
};
namespace dqm::reco {
  using MonitorElement = MonitorElementStub;
}
class DQMStoreStub {
public:
  using Store = std::map<std::string, std::unique_ptr<MonitorElementStub>>;
  class IBooker {
  public:
    explicit IBooker(Store& store) : store_(store) {}
    void cd() { folder_.clear(); }
    void setCurrentFolder(const std::string& folder) { folder_ = folder; }
    MonitorElementStub* book1D(const std::string& name, const std::string&, int nx, double xlow, double xhigh) {
      return book(name, "TH1F", nx, xlow, xhigh);
    }
    MonitorElementStub* book1DD(const std::string& name, const std::string&, int nx, double xlow, double xhigh) {
      return book(name, "TH1D", nx, xlow, xhigh);
    }
    MonitorElementStub* book2D(
        const std::string& name, const std::string&, int nx, double xlow, double xhigh, int ny, double ylow, double yhigh) {
      return book(name, "TH2F", nx, xlow, xhigh, ny, ylow, yhigh);
    }
    MonitorElementStub* book2DD(
        const std::string& name, const std::string&, int nx, double xlow, double xhigh, int ny, double ylow, double yhigh) {
      return book(name, "TH2D", nx, xlow, xhigh, ny, ylow, yhigh);
    }
    MonitorElementStub* bookInt(const std::string& name) { return book(name, "INT", 0, 0., 0.); }
    MonitorElementStub* bookString(const std::string& name, const std::string& value) {
      MonitorElementStub* me = book(name, "STRING", 0, 0., 0.);
      me->Fill(value);
      return me;
    }

  private:
    MonitorElementStub* book(const std::string& name, const char* kind, int nx, double xlow, double xhigh, int ny = 0,
                             double ylow = 0, double yhigh = 0) {
      std::unique_ptr<MonitorElementStub>& me = store_[folder_ + "/" + name];
      if (!me)
        me = std::make_unique<MonitorElementStub>(kind, nx, xlow, xhigh, ny, ylow, yhigh);
      return me.get();
    }
    Store& store_;
    std::string folder_;
  };
};
// DQMServices/Core/interface/DQMGlobalEDAnalyzer.h: one module instance for every stream; the
// histograms of a run live in the RunCache H, booked by bookHistograms and passed to the const
// dqmAnalyze of every event.  endJob is edm::global::EDProducerBase's.
template <typename H, typename... Args>
class DQMGlobalEDAnalyzer : public edm::ModuleBase {
public:
  typedef DQMStoreStub DQMStore;
  typedef MonitorElementStub MonitorElement;
  virtual ~DQMGlobalEDAnalyzer() = default;
  virtual void dqmBeginRun(edm::Run const&, edm::EventSetup const&, H&) const {}
  virtual void bookHistograms(DQMStore::IBooker&, edm::Run const&, edm::EventSetup const&, H&) const = 0;
  virtual void dqmAnalyze(edm::Event const&, edm::EventSetup const&, H const&) const = 0;
  virtual void dqmEndRun(edm::Run const&, edm::EventSetup const&, H const&) const {}
  virtual void beginJob() {}
  virtual void endJob() {}
};

// ---- ROOT / TFileService
class TTree {
public:
  TTree(const char*, const char*) {}
  void Branch(const char*, void*, const char*) {}
  int Fill() { return 1; }
};
class TFileService {
public:
  static inline const std::string kSharedResource = "TFileService";
  template <class T, class... A>
  T* make(A&&... args) {
    objects_.push_back(std::make_shared<T>(std::forward<A>(args)...));
    return static_cast<T*>(objects_.back().get());
  }

private:
  std::vector<std::shared_ptr<void>> objects_;
};
namespace edm {
  template <class T>
  class Service {
  public:
    bool isAvailable() const { return true; }
    T* operator->() const {
      static T instance;
      return &instance;
    }
  };
}  // namespace edm

#define DEFINE_FWK_MODULE(type) static_assert(sizeof(type) > 0, #type)
