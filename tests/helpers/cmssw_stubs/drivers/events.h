// What the plugin drivers share: a generated Outer Tracker (2S and PS modules in the barrel
// and the endcap, two sensors each), events that are a function of their number only, the
// geometry and topology of the event setup, and the plugin's parameters from its
// fillDescriptions() with "Name=value" overrides.  The modules of stack index i + 1 are PS
// modules when i % 3 == 0.
#pragma once
#include "cmssw_stub_api.h"

#include <algorithm>
#include <any>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace drivers {
  constexpr double kLightSpeedCmPerNs = 29.9792458;
  inline std::atomic<long long> generatedHits{0}, generatedOrphans{0};  // Outer Tracker hits put in the events

  struct Module {
    uint32_t stack;
    GlobalPoint position;
    bool barrel;
    bool twoS;
  };

  inline uint32_t stackId(int subdet, int index) {
    return (1u << 28) | (static_cast<uint32_t>(subdet) << 25) | (static_cast<uint32_t>(index) << 2);
  }

  inline std::vector<Module> makeModules() {
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
  inline edm::Event makeEvent(int number, const std::vector<Module>& modules, double orphans, bool mixing, bool noHits,
                       const std::vector<std::string>& dropped, edm::StreamID stream) {
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
        if (flat(rng) < orphans) {
          detId = stackId(m.barrel ? StripSubdetector::TOB : StripSubdetector::TID, 4000 + t) + 1;
          generatedOrphans++;
        }
        generatedHits++;
        const float tof = static_cast<float>(m.position.mag() / kLightSpeedCmPerNs + jitter(rng));
        const float eloss = static_cast<float>(charge(rng) * 3.61e-9);
        const float dz = flat(rng) < 0.05 ? 0.005f : 0.03f;  // a few delta rays
        PSimHit hit(detId, t, event, LocalPoint(0.1f, 0.2f, dz / 2), LocalPoint(0.1f, 0.2f, -dz / 2), tof, eloss);
        (m.barrel ? tob : tid).push_back(hit);
      }
    }
    if (noHits) {
      tob.clear();
      tid.clear();
    }
    edm::Event ev(stream, static_cast<unsigned long long>(number + 1));
    auto put = [&](const std::string& key, auto product) {
      if (std::find(dropped.begin(), dropped.end(), key) == dropped.end())
        ev.put(key, std::move(product));
    };
    if (mixing) {
      CrossingFrame<SimTrack> trackFrame;
      trackFrame.items = tracks;
      put("mix:g4SimHits", trackFrame);
      CrossingFrame<PSimHit> tobFrame, tidFrame, empty;
      tobFrame.items = tob;
      tidFrame.items = tid;
      put("mix:g4SimHitsTrackerHitsTOBLowTof", tobFrame);
      put("mix:g4SimHitsTrackerHitsTIDLowTof", tidFrame);
      put("mix:g4SimHitsTrackerHitsTOBHighTof", empty);
      put("mix:g4SimHitsTrackerHitsTIDHighTof", empty);
    } else {
      put("g4SimHits", tracks);
      put("g4SimHits:TrackerHitsTOBLowTof", edm::PSimHitContainer(tob));
      put("g4SimHits:TrackerHitsTIDLowTof", edm::PSimHitContainer(tid));
      put("g4SimHits:TrackerHitsTOBHighTof", edm::PSimHitContainer());
      put("g4SimHits:TrackerHitsTIDHighTof", edm::PSimHitContainer());
    }
    return ev;
  }

  // "Name=value" on the description's type.
  inline void override(edm::ParameterSet& pset, const edm::ParameterSetDescription& desc, const std::string& assignment) {
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

  inline edm::ParameterSet defaults(const edm::ParameterSetDescription& desc) {
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

  // The options both drivers take: --events E, --orphans F, --no-geometry, --no-hits,
  // --set Name=value (repeatable).
  struct CommonOptions {
    int events = 20;
    double orphans = 0.;
    bool noGeometry = false, noHits = false;
    std::vector<std::string> assignments;

    // True when `arg` was one of them (its value taken with next()).
    template <class Next>
    bool parse(const std::string& arg, Next next) {
      if (arg == "--events")
        events = std::stoi(next());
      else if (arg == "--orphans")
        orphans = std::stod(next());
      else if (arg == "--no-geometry")
        noGeometry = true;
      else if (arg == "--no-hits")
        noHits = true;
      else if (arg == "--set")
        assignments.push_back(next());
      else
        return false;
      return true;
    }

    // The description's defaults with the --set values.
    edm::ParameterSet parameters(const edm::ParameterSetDescription& desc) const {
      edm::ParameterSet pset = defaults(desc);
      for (const auto& assignment : assignments)
        override(pset, desc, assignment);
      return pset;
    }
  };

  struct Setup {  // the event setup of a job: geometry (unless noGeometry) and topology
    explicit Setup(const std::vector<Module>& modules, bool noGeometry) {
      if (!noGeometry)
        for (const Module& m : modules)
          for (uint32_t sensor = 1; sensor <= 2; sensor++) {
            using Type = TrackerGeometry::ModuleType;
            const Type type = m.twoS ? Type::Ph2SS : (sensor == 1 ? Type::Ph2PSP : Type::Ph2PSS);
            geometry.addDet(m.stack + sensor, m.position, type);
          }
      eventSetup.add(geometry);
      eventSetup.add(topology);
    }
    Setup(const Setup&) = delete;
    TrackerGeometry geometry;
    const TrackerTopology topology{};
    edm::EventSetup eventSetup;
  };
}  // namespace drivers
