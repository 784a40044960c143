// Timeline: a Chrome-trace (Perfetto-compatible) JSON recorder of named time spans.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kirzl::io {

/// Records spans ("forward", "all_reduce bucket 3", ...) and writes them as a Chrome trace JSON
/// file that chrome://tracing and ui.perfetto.dev open. A Timeline built with an empty path is
/// disabled: recording does nothing and costs one branch. Thread-safe.
class Timeline {
 public:
  /// `path`: output file (empty: disabled). `pid`: the process lane (use the rank).
  explicit Timeline(std::string path = {}, int pid = 0);
  /// Writes the file (if enabled and anything was recorded); errors are printed, not thrown.
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  /// The file for `rank` named by the KIRZL_TIMELINE environment variable: "<value>.rank<r>.json"
  /// (or "<value>" itself when it already ends in ".json" and rank is 0); empty when unset.
  static std::string path_from_env(int rank);

  /// False when built with an empty path: recording does nothing.
  bool enabled() const { return !path_.empty(); }
  /// The file written (empty when disabled).
  const std::string& path() const { return path_; }
  /// Microseconds since this timeline was created.
  int64_t now_us() const;
  /// Records a span [start_us, end_us) on lane `track` (e.g. 0 compute, 1 communication).
  void span(const std::string& name, const std::string& category, int64_t start_us, int64_t end_us, int track = 0);

  /// Records the span from construction to destruction.
  class Scope {
   public:
    /// Starts a span `name` of `category` on lane `track` of `t` (not owned; must outlive the scope).
    Scope(Timeline& t, std::string name, std::string category, int track = 0);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Timeline& t_;
    std::string name_, category_;
    int track_;
    int64_t start_;
  };

  /// Writes all spans recorded so far (atomically: temporary file, then rename). Throws
  /// Error{Io} when the file cannot be written.
  void write() const;
  /// Number of spans recorded so far.
  size_t size() const;

 private:
  struct Span {
    std::string name, category;
    int64_t start_us, dur_us;
    int track;
  };
  std::string path_;
  int pid_;
  std::chrono::steady_clock::time_point origin_;
  mutable std::mutex mu_;
  std::vector<Span> spans_;
};

}  // namespace kirzl::io
