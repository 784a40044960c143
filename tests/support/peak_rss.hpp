// Test support: the process's peak resident memory, measured over a stretch of code (Linux).
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace kirzl::testing {

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or nullopt where it cannot be read.
inline std::optional<int64_t> proc_status_kib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return std::nullopt;
}

/// Resets the resident-memory high-water mark (VmHWM) to the current resident size, by writing 5
/// to /proc/self/clear_refs (Linux 4.0 and later). False where that is not allowed.
inline bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5" << std::flush;
  return clear.good();
}

}  // namespace kirzl::testing
