// Internal: the failure machinery shared by every backend — a ring buffer of each rank's recent
// collectives (the "flight recorder"), the report written when a collective times out, and the
// timeout defaults.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "comm/collective.h"

namespace kirzl::comm::detail {

using Clock = std::chrono::steady_clock;

struct FlightRecord {
  enum class State { Queued, Running, Done, Failed };
  CollectiveDesc desc;
  State state = State::Queued;
  Clock::time_point queued_at, started_at, ended_at;
  std::string error;
};

const char* state_name(FlightRecord::State s);

// Thread-safe; keeps the last `capacity` collectives of one communicator.
class FlightRecorder {
 public:
  explicit FlightRecorder(size_t capacity = 32) : capacity_(capacity) {}
  void queued(const CollectiveDesc& d);
  void started(int64_t seq);
  void finished(int64_t seq, bool ok, const std::string& error = {});
  std::vector<FlightRecord> snapshot() const;
  // Where this rank is: "running all_reduce #3 (f32 x 10, sum) for 120 ms", "idle after
  // barrier #2 (done)", or "has not started any collective".
  std::string where() const;
  // The last started collective's sequence number (0 if none).
  int64_t last_started() const;
  // Multi-line table of the recorded collectives, prefixed by "rank R".
  std::string dump(int rank) const;

 private:
  FlightRecord* find_(int64_t seq);
  mutable std::mutex mu_;
  size_t capacity_;
  std::deque<FlightRecord> records_;
};

// Writes a failure report to stderr and, when KIRZL_REPORT names a file, to that file (replacing it).
void write_report(const std::string& text);

// `requested` when positive, else KIRZL_TIMEOUT (seconds, may be fractional) when set, else 300 s.
std::chrono::milliseconds resolve_timeout(std::chrono::milliseconds requested);

}  // namespace kirzl::comm::detail
