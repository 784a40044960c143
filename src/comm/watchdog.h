// Internal: the watchdog of a communicator whose collectives run on a device (NCCL). It owns the
// list of outstanding works, completes them as the device finishes them, and turns a timeout, a
// signature mismatch or an asynchronous backend error into a failed Work with the same readable
// report as the CPU backends — never a silent hang. Device-independent (the device is reached
// through the callbacks), so its logic is tested on any machine with fake callbacks.
//
// Note [watchdog]: works run in order on one stream, so only the oldest outstanding work (the
// head) can be running; its timeout starts when it becomes the head (the one before it finished),
// like the CPU backends' "when it starts running". A thread polls the head every poll interval
// (1 ms by default) while works are outstanding, and the backend's asynchronous error every
// 100 ms while idle. On a failure it calls `abort` once (ncclCommAbort: kernels stuck waiting for
// peers return), fails the head with the report and every later work as "pending when the
// communicator failed", and poisons the communicator (failure() is then set). A callback that
// throws (a CUDA error in cudaEventQuery) is such a failure too: the thread never dies by
// std::terminate (Note [watchdog errors] in watchdog.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/flight_recorder.h"
#include "comm/work_state.h"

namespace kirzl::comm::detail {

struct WatchedWork {
  CollectiveDesc desc;  // seq, timeout (resolved, > 0) and tag filled in
  std::shared_ptr<WorkState> state;
  // True once the device has finished the work; never blocks. Called from the watchdog thread only.
  std::function<bool()> finished;
  // The signature check (Note [nccl work]): a mismatch message once the headers are known to
  // disagree, else nullopt (agreeing or not known yet). May be empty.
  std::function<std::optional<std::string>()> mismatch;
  // What is known of the other ranks when this work times out (appended to the message). May be empty.
  std::function<std::string()> arrival;
  // Kept alive until the work is retired (tensors the device still reads or writes).
  std::shared_ptr<void> keep;
};

class Watchdog {
 public:
  struct Backend {
    std::string name;  // "nccl"
    int rank = 0, size = 1;
    // The backend's asynchronous error, or nullopt; may be empty.
    std::function<std::optional<std::string>()> async_error;
    // Called once, on the watchdog thread, when a work fails (before the works are failed). May be empty.
    std::function<void()> abort;
    // Called first on the watchdog thread (the NCCL backend makes its device current there, so
    // that the thread's CUDA calls do not create a context on device 0). May be empty.
    std::function<void()> thread_start;
  };

  // `poll_interval`: how often the head is polled while works are outstanding; `idle_interval`:
  // how often the backend's asynchronous error is checked while none is.
  Watchdog(Backend backend, FlightRecorder& recorder,
           std::chrono::microseconds poll_interval = std::chrono::microseconds(1000),
           std::chrono::microseconds idle_interval = std::chrono::microseconds(100000));
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Takes over `w` (records it as queued). Throws the poison error when the communicator failed.
  // Wakes the thread only when `w` ends an idle spell (Note [watchdog wake-up]).
  void watch(WatchedWork w);
  // Wakes the thread for an immediate poll (e.g. a waiter saw the device finish).
  void poke();
  // Blocks until no work is outstanding; each is bounded by its own timeout.
  void drain();
  // The error that poisoned the communicator, if any.
  std::optional<Error> failure() const;
  size_t outstanding() const;
  // One poll, on the calling thread (tests drive the logic with it; the thread calls it too).
  void poll_once();

 private:
  // Why the works fail: `culprit_seq` is the work the message is about (0: none); `report`
  // writes the flight recorder's report (KIRZL_REPORT).
  struct Failure {
    ErrorCode code;
    std::string message;
    bool report;
    int64_t culprit_seq;
  };
  void loop();
  // Retires finished works (into `completed`) and looks for a failure; calls the callbacks, which
  // may throw. The caller holds mu_.
  std::optional<Failure> scan_(Clock::time_point now, std::vector<std::shared_ptr<WorkState>>& completed);
  // Fails every outstanding work; the caller holds mu_ through `lock` (released while the abort
  // runs and the works fail) and has taken the works out (`works`).
  void fail_(std::unique_lock<std::mutex>& lock, std::deque<WatchedWork>& works, const Failure& f,
             std::vector<std::shared_ptr<WorkState>>& finished_before);
  // Fails the outstanding works after an exception escaped poll_once (Note [watchdog errors]).
  void fail_last_resort_(std::exception_ptr e) noexcept;

  Backend backend_;
  FlightRecorder& recorder_;
  const std::chrono::microseconds poll_interval_, idle_interval_;
  mutable std::mutex mu_;
  std::mutex poll_mu_;  // one poll at a time (the thread, or a test)
  std::condition_variable cv_, drained_;
  std::deque<WatchedWork> works_;
  Clock::time_point head_started_{};
  std::optional<Error> failure_;
  bool stop_ = false, poked_ = false;
  Clock::time_point last_async_check_{};
  std::atomic<bool> aborted_{false};  // `abort` is called at most once
  std::thread thread_;
};

}  // namespace kirzl::comm::detail
