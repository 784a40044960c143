// Internal: the shared state behind comm::Work.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <string>

#include "comm/collective.h"
#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

struct WorkState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  // The collective, named in Work::wait's own timeout message ("all_reduce #3 (f32 x 10, sum)");
  // formatted only then, as formatting costs about as much as a small collective.
  CollectiveDesc desc;
  // Note [inline execution]: run by Work::wait() before it blocks, so that a thread that waits for
  // its collective right away may run it itself instead of paying two thread hand-offs. Returns
  // at once when the communicator's worker is busy (it then completes the work as usual).
  std::function<void(WorkState&)> help;
  // Note [nccl work]: set for work that runs on a CUDA stream (NCCL). Work::wait() with timeout 0
  // calls it instead of blocking the host: it makes the caller's current stream wait on the
  // work's end event. Work::synchronize() ignores it and blocks the host.
  std::function<void()> stream_wait;

  void complete() {
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
  }
  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (done) return;
      error = std::move(e);
      done = true;
    }
    cv.notify_all();
  }
};

}  // namespace kirzl::comm::detail
