// Prints what a plugin's fillDescriptions() declared, one "<name> <type> <default>" per
// parameter, then "@label <label>" ("" = addWithDefaultLabel); the tests compare it with the
// cfi/cfg that configures the plugin.
#pragma once
#include "cmssw_stub_api.h"

#include <any>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace {
  inline std::string show(const std::any& value) {
    std::ostringstream out;
    out << std::setprecision(17);
    if (auto v = std::any_cast<std::string>(&value))
      out << "'" << *v << "'";
    else if (auto d = std::any_cast<double>(&value))
      out << *d;
    else if (auto b = std::any_cast<bool>(&value))
      out << (*b ? "True" : "False");
    else if (auto i = std::any_cast<int>(&value))
      out << *i;
    else if (auto u = std::any_cast<unsigned int>(&value))
      out << *u;
    else if (auto tag = std::any_cast<edm::InputTag>(&value))
      out << tag->encode();
    else if (auto tags = std::any_cast<std::vector<edm::InputTag>>(&value)) {
      for (std::size_t k = 0; k < tags->size(); k++)
        out << (k ? "," : "") << (*tags)[k].encode();
    } else if (auto ds = std::any_cast<std::vector<double>>(&value)) {
      for (std::size_t k = 0; k < ds->size(); k++)
        out << (k ? "," : "") << (*ds)[k];
    }
    return out.str();
  }

  inline int printDescriptions(const edm::ConfigurationDescriptions& descriptions) {
    for (const auto& [label, desc] : descriptions.described()) {
      for (const auto& p : desc.parameters())
        std::printf("%s %s %s\n", p->name().c_str(), p->type().c_str(), show(p->value()).c_str());
      std::printf("@label %s\n", label.c_str());
    }
    return 0;
  }
}  // namespace
