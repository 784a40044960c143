// See Note [abort on failure] in job_failure.h.
#include "comm/job_failure.h"

#include <mutex>

namespace kirzl::comm::detail {

namespace {
// Part of the process group's state (the one allowed global): it outlives every communicator.
struct JobFailure {
  std::mutex mu;
  std::optional<std::string> reason;
  WorldPlace place;
};
JobFailure& job() {
  static auto* j = new JobFailure();  // never destroyed: read during teardown at exit
  return *j;
}
}  // namespace

void mark_job_failed(const std::string& reason) noexcept {
  try {
    std::lock_guard<std::mutex> lock(job().mu);
    if (!job().reason) job().reason = reason;
  } catch (...) {
  }
}

std::optional<std::string> job_failure() {
  std::lock_guard<std::mutex> lock(job().mu);
  return job().reason;
}

void record_world_place(WorldPlace place) noexcept {
  std::lock_guard<std::mutex> lock(job().mu);
  job().place = place;
}

WorldPlace world_place() noexcept {
  std::lock_guard<std::mutex> lock(job().mu);
  return job().place;
}

}  // namespace kirzl::comm::detail
