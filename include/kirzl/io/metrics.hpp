// MetricsLog: training metrics as JSON Lines (one JSON object per line), for plotting and tools.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kirzl::io {

/// One line of the metrics log. step and epoch are always written; the other standard fields
/// only when set; extra fields follow in the order they were set:
///   {"step":100,"epoch":1,"loss":0.4321,"lr":0.001,"samples_per_second":5120.0,"val_loss":0.5}
/// Build it with designated initializers and/or set():
///   log.log(MetricsRecord{.step = s, .loss = l}.set("grad_norm", g).set("phase", "train"));
struct MetricsRecord {
  /// The value of an extra field: a number or a string.
  using Value = std::variant<double, int64_t, std::string>;

  int64_t step = 0;                                   ///< always written
  int64_t epoch = 0;                                  ///< always written
  std::optional<double> loss = {};                    ///< written when set
  std::optional<double> accuracy = {};                ///< written when set
  std::optional<double> lr = {};                      ///< written when set
  std::optional<double> samples_per_second = {};      ///< written when set
  std::optional<double> elapsed_seconds = {};         ///< written when set
  /// Extra fields in insertion order. Names must differ from the standard ones and each other.
  std::vector<std::pair<std::string, Value>> extra = {};

  /// Adds (or replaces) an extra field; returns *this for chaining. Throws
  /// Error{InvalidArgument} for an empty name or one of the standard field names.
  MetricsRecord& set(const std::string& name, double value);
  /// Same, for an integer field.
  MetricsRecord& set(const std::string& name, int64_t value);
  /// Same, for an integer field.
  MetricsRecord& set(const std::string& name, int value) { return set(name, static_cast<int64_t>(value)); }
  /// Same, for a string field.
  MetricsRecord& set(const std::string& name, std::string value);
  /// Same, for a string field.
  MetricsRecord& set(const std::string& name, const char* value) { return set(name, std::string(value)); }

  /// The JSON object of this record, without a newline. Doubles are written with the digits that
  /// read back to the same value, integral ones with ".0" (5120.0); NaN and infinities as null;
  /// strings JSON-escaped (invalid UTF-8 as U+FFFD).
  std::string to_json() const;

 private:
  MetricsRecord& set_value(const std::string& name, Value value);
};

/// Appends MetricsRecords to a file, one JSON object per line, flushed after every line so that
/// a crash loses at most the line being written and `tail -f` shows progress. The file is
/// opened in append mode and created when missing; an existing log is continued, not replaced.
///
/// A MetricsLog built with an empty path is disabled: log() does nothing. Thread-safe: lines
/// from concurrent log() calls never interleave.
class MetricsLog {
 public:
  /// Opens `path` for appending (empty: disabled). Throws Error{Io} naming the path and the
  /// system's reason when it cannot be opened.
  explicit MetricsLog(const std::string& path = {});
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  /// False when built with an empty path.
  bool enabled() const { return file_ != nullptr; }
  /// The file appended to (empty when disabled).
  const std::string& path() const { return path_; }

  /// Appends `record` as one line and flushes. Throws Error{Io} when writing fails.
  void log(const MetricsRecord& record);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mu_;
};

}  // namespace kirzl::io
