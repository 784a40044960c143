#include "kirzl/io/timeline.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/environment.h"
#include "io/json.h"
#include "kirzl/core/error.hpp"

namespace kirzl::io {


Timeline::Timeline(std::string path, int pid) : path_(std::move(path)), pid_(pid), origin_(std::chrono::steady_clock::now()) {}

Timeline::~Timeline() {
  if (!enabled() || size() == 0) return;
  try {
    write();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kirzl: could not write the timeline: %s\n", e.what());
  }
}

std::string Timeline::path_from_env(int rank) {
  const auto v = env::text("KIRZL_TIMELINE");
  if (!v) return {};
  std::string p = *v;
  bool is_json = p.size() > 5 && p.compare(p.size() - 5, 5, ".json") == 0;
  if (is_json && rank == 0) return p;
  if (is_json) p = p.substr(0, p.size() - 5);
  return p + ".rank" + std::to_string(rank) + ".json";
}

int64_t Timeline::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - origin_).count();
}

void Timeline::span(const std::string& name, const std::string& category, int64_t start_us, int64_t end_us, int track) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  spans_.push_back({name, category, start_us, end_us > start_us ? end_us - start_us : 0, track});
}

size_t Timeline::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spans_.size();
}

void Timeline::write() const {
  if (!enabled()) return;
  std::ostringstream os;
  os << "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    os << "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": " << pid_ << ", \"args\": {\"name\": \"rank " << pid_
       << "\"}}";
    // One event per line, laid out here; the strings are escaped by nlohmann (json::quote).
    for (const Span& s : spans_)
      os << ",\n{\"name\": " << json::quote(s.name) << ", \"cat\": " << json::quote(s.category)
         << ", \"ph\": \"X\", \"ts\": " << s.start_us << ", \"dur\": " << s.dur_us << ", \"pid\": " << pid_
         << ", \"tid\": " << s.track << "}";
  }
  os << "\n]}\n";
  std::string tmp = path_ + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    KIRZL_CHECK_CODE(f.good(), ErrorCode::Io, "timeline: cannot open '", tmp, "' for writing");
    f << os.str();
    f.flush();
    KIRZL_CHECK_CODE(f.good(), ErrorCode::Io, "timeline: writing '", tmp, "' failed");
  }
  KIRZL_CHECK_CODE(std::rename(tmp.c_str(), path_.c_str()) == 0, ErrorCode::Io, "timeline: cannot rename '", tmp,
                   "' to '", path_, "'");
}

Timeline::Scope::Scope(Timeline& t, std::string name, std::string category, int track)
    : t_(t), name_(std::move(name)), category_(std::move(category)), track_(track), start_(t.enabled() ? t.now_us() : 0) {}

Timeline::Scope::~Scope() {
  if (t_.enabled()) t_.span(name_, category_, start_, t_.now_us(), track_);
}

}  // namespace kirzl::io
