// The flight recorder and failure reports. See flight_recorder.h.
#include "comm/flight_recorder.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/environment.h"

namespace kirzl::comm::detail {

namespace {
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

const char* state_name(FlightRecord::State s) {
  switch (s) {
    case FlightRecord::State::Queued: return "queued";
    case FlightRecord::State::Running: return "running";
    case FlightRecord::State::Done: return "done";
    case FlightRecord::State::Failed: return "FAILED";
  }
  return "?";
}

FlightRecord* FlightRecorder::find_(int64_t seq) {
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->desc.seq == seq) return &*it;
  return nullptr;
}

void FlightRecorder::queued(const CollectiveDesc& d) {
  std::lock_guard<std::mutex> lock(mu_);
  FlightRecord r;
  r.desc = d;
  r.queued_at = Clock::now();
  records_.push_back(std::move(r));
  while (records_.size() > capacity_) records_.pop_front();
}

void FlightRecorder::started(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (FlightRecord* r = find_(seq)) {
    r->state = FlightRecord::State::Running;
    r->started_at = Clock::now();
  }
}

void FlightRecorder::finished(int64_t seq, bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (FlightRecord* r = find_(seq)) {
    if (r->started_at == Clock::time_point{}) r->started_at = Clock::now();
    r->state = ok ? FlightRecord::State::Done : FlightRecord::State::Failed;
    r->ended_at = Clock::now();
    r->error = error;
  }
}

std::vector<FlightRecord> FlightRecorder::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {records_.begin(), records_.end()};
}

int64_t FlightRecorder::last_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->state != FlightRecord::State::Queued) return it->desc.seq;
  return 0;
}

std::string FlightRecorder::where() const {
  std::lock_guard<std::mutex> lock(mu_);
  const FlightRecord* last = nullptr;
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->state != FlightRecord::State::Queued) {
      last = &*it;
      break;
    }
  std::ostringstream os;
  if (!last) {
    os << "has not started any collective";
  } else if (last->state == FlightRecord::State::Running) {
    os << "is in " << last->desc.str() << " for " << static_cast<int64_t>(ms_between(last->started_at, Clock::now()))
       << " ms";
  } else {
    os << "last started " << last->desc.str() << " (" << state_name(last->state) << ")";
  }
  return os.str();
}

std::string FlightRecorder::dump(int rank) const {
  auto recs = snapshot();
  std::ostringstream os;
  os << "rank " << rank << ": " << where() << "\n";
  const Clock::time_point now = Clock::now();
  for (const auto& r : recs) {
    os << "  " << r.desc.long_str() << "  " << state_name(r.state);
    if (r.state == FlightRecord::State::Queued)
      os << " for " << static_cast<int64_t>(ms_between(r.queued_at, now)) << " ms";
    else if (r.state == FlightRecord::State::Running)
      os << " for " << static_cast<int64_t>(ms_between(r.started_at, now)) << " ms";
    else
      os << " in " << ms_between(r.started_at, r.ended_at) << " ms, ended " << static_cast<int64_t>(ms_between(r.ended_at, now))
         << " ms ago";
    if (!r.error.empty()) os << " — " << r.error.substr(0, 200);
    os << "\n";
  }
  return os.str();
}

void write_report(const std::string& text) {
  std::cerr << text << std::flush;
  if (const auto path = env::text("KIRZL_REPORT")) {
    std::ofstream f(*path, std::ios::trunc);
    if (f) f << text;
  }
}

std::chrono::milliseconds resolve_timeout(std::chrono::milliseconds requested) {
  if (requested.count() > 0) return requested;
  if (const auto s = env::seconds("KIRZL_TIMEOUT")) return std::chrono::milliseconds(static_cast<int64_t>(*s * 1000.0));
  return std::chrono::milliseconds(300000);
}

}  // namespace kirzl::comm::detail
