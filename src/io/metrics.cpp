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
  std::string s = "{\"step\":" + std::to_string(step) + ",\"epoch\":" + std::to_string(epoch);
  auto field = [&s](const char* name, const std::optional<double>& v) {
    if (!v) return;
    s += ",\"";
    s += name;
    s += "\":";
    s += json::number(*v);
  };
  field("loss", loss);
  field("accuracy", accuracy);
  field("lr", lr);
  field("samples_per_second", samples_per_second);
  field("elapsed_seconds", elapsed_seconds);
  for (const auto& [name, v] : extra) {
    s += ',';
    s += json::quote(name);
    s += ':';
    if (const double* d = std::get_if<double>(&v)) s += json::number(*d);
    else if (const int64_t* i = std::get_if<int64_t>(&v)) s += std::to_string(*i);
    else s += json::quote(std::get<std::string>(v));
  }
  s += '}';
  return s;
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
