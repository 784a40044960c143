// Test support for the examples' energy fields: what this machine's CPU energy meter says, and
// the exact form the examples' JSON takes with it (numbers, or null next to the reason).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <kirzl/io/energy.hpp>

#include "support/program_run.hpp"

namespace kirzl::testing {

/// Whether `"key":` in `text` (the last one) is followed by a number (not null, not absent).
inline bool has_number(const std::string& text, const std::string& key) {
  auto p = text.rfind("\"" + key + "\":");
  if (p == std::string::npos) return false;
  p = text.find_first_not_of(' ', p + key.size() + 3);
  return p != std::string::npos && (text[p] == '-' || (text[p] >= '0' && text[p] <= '9'));
}

/// The examples' last JSON line ends with the energy fields `names` (e.g. energy_joules,
/// joules_per_step, tokens_per_joule) and the per-rank list of `ranks` ranks. Where the CPU's
/// meter is not available (no RAPL, or root-only), each is null after
/// "energy": "not available: <the meter's reason>"; where it is, they are numbers.
inline void expect_energy_summary(const std::string& last, const std::vector<std::string>& names, int ranks) {
  io::EnergyMeter cpu;
  if (!cpu.available()) {
    std::string tail = "\"energy\": \"not available: " + cpu.unavailable_reason() + "\"";
    for (const auto& n : names) tail += ", \"" + n + "\": null";
    tail += ", \"energy_joules_per_rank\": [";
    for (int r = 0; r < ranks; ++r) tail += r ? ", null" : "null";
    tail += "]}";
    ASSERT_GE(last.size(), tail.size()) << last;
    EXPECT_EQ(last.substr(last.size() - tail.size()), tail) << last;
  } else {
    EXPECT_NE(last.find("\"energy\": \"" + cpu.source() + "\""), std::string::npos) << last;
    // energy_joules is a number; the ratios are numbers unless no joule was counted at all.
    EXPECT_TRUE(has_number(last, names.front())) << last;
    for (const auto& n : names) EXPECT_NE(last.find("\"" + n + "\": "), std::string::npos) << n << " in " << last;
  }
}

/// A metrics line of training steps carries the energy fields `names`: null followed by
/// "energy":"not available: <reason>" without a meter, numbers with one.
inline void expect_energy_metrics(const std::string& line, const std::vector<std::string>& names) {
  io::EnergyMeter cpu;
  if (!cpu.available()) {
    std::string tail;
    for (const auto& n : names) tail += "\"" + n + "\":null,";
    tail += "\"energy\":\"not available: " + cpu.unavailable_reason() + "\"}";
    ASSERT_GE(line.size(), tail.size()) << line;
    EXPECT_EQ(line.substr(line.size() - tail.size()), tail) << line;
  } else {
    EXPECT_EQ(line.find("\"energy\""), std::string::npos) << line;
    for (const auto& n : names) EXPECT_NE(line.find("\"" + n + "\":"), std::string::npos) << n << " in " << line;
  }
}

}  // namespace kirzl::testing
