// EnergyMeter on the CPU: RAPL's package counters through the Linux powercap interface.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/atomic_file.h"
#include "kirzl/core/error.hpp"
#include "kirzl/io/energy.hpp"

namespace kirzl::io {

// Note [rapl package domains]: the powercap tree has a zone per RAPL domain: intel-rapl:N for
// each package (socket), and inside it intel-rapl:N:M for its subzones (core, uncore, dram). The
// package's counter already includes core and uncore, so summing the subzones too would count
// them twice; only the top-level zones are read. A top-level zone may also be "psys", the whole
// platform on some laptops, which includes the packages: only zones whose name starts with
// "package" count. Each counter is a microjoule count that wraps to 0 after max_energy_range_uj;
// a reading lower than the previous one is taken as one wrap. Since 2020 (CVE-2020-8694) most
// kernels make energy_uj readable by root only: the meter is then not available, with EACCES's
// reason, rather than reporting nothing as zero.

namespace {
namespace fs = std::filesystem;

// The first line of a small sysfs file, or nullopt with `error` set to the system's reason.
std::optional<std::string> read_line(const fs::path& path, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    error = "cannot open '" + path.string() + "': " + detail::errno_text(errno);
    return std::nullopt;
  }
  char buf[256] = {};
  errno = 0;
  const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
  const int err = errno;
  std::fclose(f);
  if (!got) {
    error = "cannot read '" + path.string() + "': " + (err ? detail::errno_text(err) : std::string("empty file"));
    return std::nullopt;
  }
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A counter file's value in microjoules, or nullopt with `error` set.
std::optional<uint64_t> read_uj(const fs::path& path, std::string& error) {
  auto line = read_line(path, error);
  if (!line) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(line->c_str(), &end, 10);
  if (line->empty() || *end != '\0' || errno != 0 || (*line)[0] == '-') {
    error = kirzl::detail::str_cat("'", path.string(), "' holds '", *line, "', not a count of microjoules");
    return std::nullopt;
  }
  return static_cast<uint64_t>(v);
}

// N of a top-level zone's directory name "intel-rapl:N" (not a subzone "intel-rapl:N:M").
std::optional<int> package_zone_number(const std::string& name) {
  const std::string prefix = "intel-rapl:";
  if (name.compare(0, prefix.size(), prefix) != 0 || name.size() == prefix.size()) return std::nullopt;
  int n = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > 100000) return std::nullopt;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}
}  // namespace

void EnergyMeter::open_rapl() {
  const fs::path root = options_.powercap_root;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    reason_ = "RAPL: no powercap tree at '" + root.string() + "' (no RAPL driver, a virtual machine or container "
              "without it, or not Linux)";
    return;
  }
  std::vector<std::pair<int, fs::path>> zones;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (auto n = package_zone_number(it->path().filename().string())) zones.emplace_back(*n, it->path());
  if (ec) {
    reason_ = "RAPL: cannot list '" + root.string() + "': " + ec.message();
    return;
  }
  std::sort(zones.begin(), zones.end());
  std::vector<std::string> names;
  for (const auto& [n, dir] : zones) {
    std::string error;
    auto name = read_line(dir / "name", error);
    if (!name) {
      reason_ = "RAPL: " + error;
      return;
    }
    if (name->compare(0, 7, "package") != 0) continue;  // psys: the platform, which includes the packages
    RaplDomain d{.path = (dir / "energy_uj").string()};
    auto range = read_uj(dir / "max_energy_range_uj", error);
    auto now = range ? read_uj(d.path, error) : std::nullopt;
    if (!now) {
      reason_ = "RAPL: " + error;
      if (error.find(detail::errno_text(EACCES)) != std::string::npos)
        reason_ += " (the kernel lets only root read RAPL counters; ask an administrator to make energy_uj readable, "
                   "or run as root)";
      return;
    }
    KIRZL_INTERNAL_ASSERT(range.has_value());
    if (*range == 0 || *now > *range) {
      reason_ = "RAPL: '" + d.path + "' reads " + std::to_string(*now) + " above max_energy_range_uj " +
                std::to_string(*range);
      return;
    }
    d.max_range = *range;
    d.last = *now;
    rapl_.push_back(std::move(d));
    names.push_back(*name);
  }
  if (rapl_.empty()) {
    reason_ = "RAPL: no package zone (intel-rapl:N named package-N) under '" + root.string() + "'";
    return;
  }
  source_ = "RAPL";
  for (size_t i = 0; i < names.size(); ++i) source_ += (i ? " + " : " ") + names[i];
  source_ += " (" + root.string() + ")";
}

double EnergyMeter::read_rapl_locked() {
  for (RaplDomain& d : rapl_) {
    std::string error;
    auto now = read_uj(d.path, error);
    KIRZL_CHECK_CODE(now.has_value(), ErrorCode::Io, "EnergyMeter: RAPL: ", error);
    KIRZL_CHECK_CODE(*now <= d.max_range, ErrorCode::Io, "EnergyMeter: RAPL: '", d.path, "' reads ", *now,
                     " above max_energy_range_uj ", d.max_range);
    // One wrap at most between two readings (Note [rapl package domains]).
    const uint64_t delta = *now >= d.last ? *now - d.last : d.max_range - d.last + *now;
    rapl_joules_ += static_cast<double>(delta) * 1e-6;
    d.last = *now;
  }
  return rapl_joules_;
}

}  // namespace kirzl::io
