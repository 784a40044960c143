// The device-work watchdog. See watchdog.h and Note [watchdog].
#include "comm/watchdog.h"

#include <cstdio>
#include <exception>
#include <sstream>

namespace kirzl::comm::detail {

Watchdog::Watchdog(Backend backend, FlightRecorder& recorder, std::chrono::microseconds poll_interval,
                   std::chrono::microseconds idle_interval)
    : backend_(std::move(backend)), recorder_(recorder), poll_interval_(poll_interval), idle_interval_(idle_interval) {
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Note [watchdog wake-up]: while works are outstanding the thread polls every poll interval by
// itself, so a new work needs no wake-up; waking it anyway cost every collective a futex call and
// a context switch on another core, only for the thread to find nothing to do and sleep again (its
// wait ends on stop_ or poked_ only). The work that ends an idle spell does wake it, and sets
// poked_: otherwise the thread would sleep out the rest of its idle interval (100 ms) before it
// first looked at the work, and notice its completion that late.
void Watchdog::watch(WatchedWork w) {
  bool was_idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_) throw *failure_;
    recorder_.queued(w.desc);
    was_idle = works_.empty();
    works_.push_back(std::move(w));
    if (was_idle) poked_ = true;
  }
  if (was_idle) cv_.notify_all();
}

void Watchdog::poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void Watchdog::drain() {
  poke();
  std::unique_lock<std::mutex> lock(mu_);
  drained_.wait(lock, [&] { return works_.empty() || stop_; });
}

std::optional<Error> Watchdog::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

size_t Watchdog::outstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return works_.size();
}

void Watchdog::loop() {
  if (backend_.thread_start) {
    try {
      backend_.thread_start();
    } catch (...) {
      fail_last_resort_(std::current_exception());
    }
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Busy: poll often (completion latency); idle: only the backend's asynchronous error.
      const auto wait = works_.empty() ? idle_interval_ : poll_interval_;
      cv_.wait_for(lock, wait, [&] { return stop_ || poked_; });
      poked_ = false;
      if (stop_) return;
    }
    // Note [watchdog errors]: poll_once turns a throwing callback into a failure of the works
    // itself; what can still escape (an allocation failing while the report is built) must not
    // reach std::terminate, so the works are failed here with what is known and the thread
    // goes on (only to notice stop_: a failed communicator accepts no new work).
    try {
      poll_once();
    } catch (...) {
      fail_last_resort_(std::current_exception());
    }
  }
}

namespace {

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

ErrorCode code_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    return x.code();
  } catch (...) {
    return ErrorCode::Internal;
  }
}

}  // namespace

std::optional<Watchdog::Failure> Watchdog::scan_(Clock::time_point now,
                                                 std::vector<std::shared_ptr<WorkState>>& completed) {
  while (!works_.empty()) {
    WatchedWork& head = works_.front();
    if (head_started_ == Clock::time_point{}) {
      head_started_ = now;
      recorder_.started(head.desc.seq);
    }
    if (!head.finished()) break;
    // A collective whose headers disagree is wrong even when the device finished it.
    if (head.mismatch)
      if (auto m = head.mismatch()) return Failure{ErrorCode::InvalidArgument, *m, false, head.desc.seq};
    recorder_.finished(head.desc.seq, true);
    completed.push_back(head.state);
    works_.pop_front();
    head_started_ = Clock::time_point{};
  }
  if (!works_.empty()) {
    // A later collective may already show a mismatch while the head hangs on it.
    for (WatchedWork& w : works_)
      if (w.mismatch)
        if (auto m = w.mismatch()) return Failure{ErrorCode::InvalidArgument, *m, false, w.desc.seq};
    WatchedWork& head = works_.front();
    if (now - head_started_ >= head.desc.timeout) {
      std::ostringstream msg;
      msg << head.desc.long_str() << " timed out after " << head.desc.timeout.count() << " ms on rank " << backend_.rank
          << " (" << backend_.name << ", " << backend_.size << " ranks).";
      if (head.arrival) msg << " " << head.arrival();
      return Failure{ErrorCode::Timeout, msg.str(), true, head.desc.seq};
    }
  }
  const bool check_async = !works_.empty() || now - last_async_check_ >= std::chrono::milliseconds(100);
  if (check_async && backend_.async_error) {
    last_async_check_ = now;
    if (auto e = backend_.async_error()) {
      std::ostringstream msg;
      msg << backend_.name << " reported an asynchronous error on rank " << backend_.rank << " of " << backend_.size
          << ": " << *e;
      if (!works_.empty()) msg << " (while " << works_.front().desc.long_str() << " was running)";
      return Failure{ErrorCode::Nccl, msg.str(), true, works_.empty() ? 0 : works_.front().desc.seq};
    }
  }
  return std::nullopt;
}

void Watchdog::poll_once() {
  std::lock_guard<std::mutex> poll(poll_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  if (failure_) return;
  std::vector<std::shared_ptr<WorkState>> completed;
  std::optional<Failure> failure;
  // Note [watchdog errors]: the callbacks reach the device (cudaEventQuery, ncclCommGetAsyncError)
  // and may throw, e.g. a sticky CUDA error after a faulting kernel. The device state is then
  // unknown: the pending works fail with that error and the communicator is aborted, exactly as
  // for an asynchronous error reported by the backend.
  try {
    failure = scan_(Clock::now(), completed);
  } catch (...) {
    const std::exception_ptr e = std::current_exception();
    std::ostringstream msg;
    msg << "the " << backend_.name << " watchdog on rank " << backend_.rank << " of " << backend_.size
        << " failed while checking ";
    if (works_.empty()) msg << "the backend";
    else msg << works_.front().desc.long_str();
    msg << ": " << describe_exception(e);
    failure = Failure{code_of(e), msg.str(), true, works_.empty() ? 0 : works_.front().desc.seq};
  }
  if (failure) {
    std::deque<WatchedWork> all;
    all.swap(works_);
    fail_(lock, all, *failure, completed);
  }
  const bool empty = works_.empty();
  lock.unlock();
  // Works that finished before a failure was found completed successfully.
  for (auto& s : completed) s->complete();
  if (empty) drained_.notify_all();
}

void Watchdog::fail_last_resort_(std::exception_ptr e) noexcept {
  try {
    std::deque<WatchedWork> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failure_)
        failure_.emplace(code_of(e), "the communicator (rank " + std::to_string(backend_.rank) + " of " +
                                         std::to_string(backend_.size) + ", " + backend_.name +
                                         ") is unusable: its watchdog failed: " + describe_exception(e));
      all.swap(works_);
    }
    // Note [fail before abort]: wake the waiters first; `all` keeps the tensors until after the abort.
    const auto error = std::make_exception_ptr(*failure());
    for (WatchedWork& w : all) w.state->fail(error);
    if (backend_.abort && !aborted_.exchange(true)) backend_.abort();
    drained_.notify_all();
  } catch (...) {
    std::fputs("kirzl comm: the watchdog failed while failing its works (out of memory?)\n", stderr);
  }
}

void Watchdog::fail_(std::unique_lock<std::mutex>& lock, std::deque<WatchedWork>& works, const Failure& f,
                     std::vector<std::shared_ptr<WorkState>>& finished_before) {
  const ErrorCode code = f.code;
  const std::string& message = f.message;
  const bool report = f.report;
  const int64_t culprit_seq = f.culprit_seq;
  // Called with mu_ held (`lock`): poison first so that no new work is accepted.
  failure_.emplace(code, "the communicator (rank " + std::to_string(backend_.rank) + " of " +
                             std::to_string(backend_.size) + ", " + backend_.name +
                             ") is unusable after an earlier failure: " + message);
  head_started_ = Clock::time_point{};
  lock.unlock();
  // Works that finished before the failure was found succeed first: a waiter woken by the failure
  // must not see them still pending.
  for (auto& s : finished_before) s->complete();
  finished_before.clear();
  // Note [fail before abort]: the waiters are failed first, so that they wake at the timeout even
  // when the abort has to wait for the device (on the H200, ncclCommAbort waited 1.3 s for a stream
  // held by a host function, and the timeout reached the waiter only then). What a failed work's
  // kernels may still touch stays alive: the works' `keep` (their tensors and events) is released
  // only after the abort has returned, below.
  for (WatchedWork& w : works) {
    const std::string m = w.desc.seq == culprit_seq
                              ? message
                              : w.desc.long_str() + " was pending on rank " + std::to_string(backend_.rank) +
                                    " when the communicator failed: " + message;
    if (!report) recorder_.finished(w.desc.seq, false, m);
    w.state->fail(std::make_exception_ptr(Error(code, m)));
  }
  if (report) {
    // The report must not keep the works from failing (Note [watchdog errors]).
    try {
      std::ostringstream text;
      text << "kirzl comm: " << (code == ErrorCode::Timeout ? "collective timeout" : "collective failure")
           << " (backend " << backend_.name << ", " << backend_.size << " ranks)\n"
           << message << "\n";
      for (const WatchedWork& w : works) recorder_.finished(w.desc.seq, false, w.desc.seq == culprit_seq ? message : "");
      text << recorder_.dump(backend_.rank);
      write_report(text.str());
    } catch (...) {
      std::fputs("kirzl comm: writing the failure report failed (ignored)\n", stderr);
    }
  }
  // Kernels stuck waiting for peers return only after the abort.
  if (backend_.abort && !aborted_.exchange(true)) {
    try {
      backend_.abort();
    } catch (...) {
    }
  }
  works.clear();
  lock.lock();
  drained_.notify_all();
}

}  // namespace kirzl::comm::detail
