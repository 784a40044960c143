// tc's spelling of times and rates ("200us", "1ms", "1gbit", "10gbps"), parsed the same way by the
// link emulator (linkemu.cpp) and by the multinode tests that check what it was given
// (tests/comm/multinode/test_link_shaping.cpp). Header-only: linkemu is built by
// scripts/multinode.sh with one compiler call, outside CMake.
#pragma once

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

namespace tc_units {

// A non-negative number followed by one of the units in `units` (lower case; case is ignored in
// `text`), scaled by that unit's factor; -1 when `text` is not that.
inline double with_unit(const std::string& text, const std::map<std::string, double>& units) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || errno != 0 || !std::isfinite(v) || v < 0) return -1;
  std::string unit(end);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto it = units.find(unit);
  return it == units.end() ? -1 : v * it->second;
}

// A time in nanoseconds ("200us", "1ms", "0.5s", "100ns"; a bare number is microseconds, as in
// tc); -1 when malformed.
inline double time_ns(const std::string& text) {
  static const std::map<std::string, double> units = {
      {"", 1e3}, {"us", 1e3}, {"usec", 1e3}, {"usecs", 1e3}, {"ms", 1e6}, {"msec", 1e6}, {"msecs", 1e6},
      {"s", 1e9}, {"sec", 1e9}, {"secs", 1e9}, {"ns", 1},    {"nsec", 1},  {"nsecs", 1}};
  return with_unit(text, units);
}

// A rate in bits per second ("1gbit", "100mbit", "1kibit"; "10gbps" is in bytes per second; a bare
// number is bits per second, as in tc); -1 when malformed.
inline double rate_bps(const std::string& text) {
  static const std::map<std::string, double> units = [] {
    std::map<std::string, double> u = {{"", 1}, {"bit", 1}, {"bps", 8}};
    const char* prefixes[] = {"k", "m", "g", "t"};
    for (int i = 0; i < 4; ++i) {
      const std::string p = prefixes[i];
      u[p + "bit"] = std::pow(1e3, i + 1);
      u[p + "ibit"] = std::pow(1024.0, i + 1);
      u[p + "bps"] = 8 * std::pow(1e3, i + 1);
      u[p + "ibps"] = 8 * std::pow(1024.0, i + 1);
    }
    return u;
  }();
  return with_unit(text, units);
}

}  // namespace tc_units
