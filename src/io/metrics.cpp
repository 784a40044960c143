#include "kirzl/io/metrics.hpp"

#include <cerrno>

#include "io/atomic_file.h"
#include "io/json.h"
#include "kirzl/core/error.hpp"

namespace kirzl::io {

namespace {
constexpr const char* kStandardFields[] = {"step", "epoch", "loss", "accuracy", "lr", "samples_per_second",
                                           "elapsed_seconds"};
}  // namespace

MetricsRecord& MetricsRecord::set_value(const std::string& name, Value value) {
  KIRZL_CHECK(!name.empty(), "MetricsRecord::set: the field name is empty");
  for (const char* f : kStandardFields)
    KIRZL_CHECK(name != f, "MetricsRecord::set: '", name, "' is a standard field; assign the member instead");
  for (auto& [n, v] : extra)
    if (n == name) {
      v = std::move(value);
      return *this;
    }
  extra.emplace_back(name, std::move(value));
  return *this;
}

MetricsRecord& MetricsRecord::set(const std::string& name, double value) { return set_value(name, value); }
MetricsRecord& MetricsRecord::set(const std::string& name, int64_t value) { return set_value(name, value); }
MetricsRecord& MetricsRecord::set(const std::string& name, std::string value) {
  return set_value(name, std::move(value));
}

std::string MetricsRecord::to_json() const {
  nlohmann::ordered_json j = {{"step", step}, {"epoch", epoch}};
  auto field = [&j](const char* name, const std::optional<double>& v) {
    if (v) j[name] = *v;  // nlohmann writes NaN and infinities as null
  };
  field("loss", loss);
  field("accuracy", accuracy);
  field("lr", lr);
  field("samples_per_second", samples_per_second);
  field("elapsed_seconds", elapsed_seconds);
  for (const auto& [name, v] : extra) std::visit([&j, &name = name](const auto& x) { j[name] = x; }, v);
  // Invalid UTF-8 in a name or value becomes U+FFFD: the line stays valid JSON.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  if (path_.empty()) return;
  file_ = std::fopen(path_.c_str(), "a");
  KIRZL_CHECK_CODE(file_ != nullptr, ErrorCode::Io, "MetricsLog: cannot open '", path_, "' for appending: ",
                   detail::errno_text(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::log(const MetricsRecord& record) {
  if (!file_) return;
  std::string line = record.to_json();
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  errno = 0;
  bool ok = std::fwrite(line.data(), 1, line.size(), file_) == line.size();
  ok = std::fflush(file_) == 0 && ok;
  if (!ok) {
    int err = errno;
    std::clearerr(file_);
    KIRZL_FAIL(ErrorCode::Io, "MetricsLog: writing to '", path_, "' failed: ",
               err ? detail::errno_text(err) : std::string("short write"));
  }
}

}  // namespace kirzl::io
