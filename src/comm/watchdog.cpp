// The device-work watchdog. See watchdog.h and Note [watchdog].
#include "comm/watchdog.h"

#include <sstream>

namespace kirzl::comm::detail {

Watchdog::Watchdog(Backend backend, FlightRecorder& recorder, std::chrono::microseconds poll_interval)
    : backend_(std::move(backend)), recorder_(recorder), poll_interval_(poll_interval) {
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

void Watchdog::watch(WatchedWork w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_) throw *failure_;
    recorder_.queued(w.desc);
    works_.push_back(std::move(w));
  }
  cv_.notify_all();
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
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Busy: poll often (completion latency); idle: only the backend's asynchronous error.
      const auto wait = works_.empty() ? std::chrono::microseconds(100000) : poll_interval_;
      cv_.wait_for(lock, wait, [&] { return stop_ || poked_; });
      poked_ = false;
      if (stop_) return;
    }
    poll_once();
  }
}

void Watchdog::poll_once() {
  std::lock_guard<std::mutex> poll(poll_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  if (failure_) return;
  const auto now = Clock::now();
  std::vector<std::shared_ptr<WorkState>> completed;
  while (!works_.empty()) {
    WatchedWork& head = works_.front();
    if (head_started_ == Clock::time_point{}) {
      head_started_ = now;
      recorder_.started(head.desc.seq);
    }
    if (!head.finished()) break;
    // A collective whose headers disagree is wrong even when the device finished it.
    if (head.mismatch)
      if (auto m = head.mismatch()) {
        std::deque<WatchedWork> all;
        all.swap(works_);
        fail_(all, ErrorCode::InvalidArgument, *m, false, all.front().desc.seq);
        return;
      }
    recorder_.finished(head.desc.seq, true);
    completed.push_back(head.state);
    works_.pop_front();
    head_started_ = Clock::time_point{};
  }
  if (!works_.empty()) {
    // A later collective may already show a mismatch while the head hangs on it.
    for (WatchedWork& w : works_)
      if (w.mismatch)
        if (auto m = w.mismatch()) {
          const int64_t culprit = w.desc.seq;
          std::deque<WatchedWork> all;
          all.swap(works_);
          fail_(all, ErrorCode::InvalidArgument, *m, false, culprit);
          return;
        }
    WatchedWork& head = works_.front();
    if (now - head_started_ >= head.desc.timeout) {
      std::ostringstream msg;
      msg << head.desc.long_str() << " timed out after " << head.desc.timeout.count() << " ms on rank " << backend_.rank
          << " (" << backend_.name << ", " << backend_.size << " ranks).";
      if (head.arrival) msg << " " << head.arrival();
      std::deque<WatchedWork> all;
      all.swap(works_);
      fail_(all, ErrorCode::Timeout, msg.str(), true, all.front().desc.seq);
      return;
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
      std::deque<WatchedWork> all;
      all.swap(works_);
      fail_(all, ErrorCode::Nccl, msg.str(), true, all.empty() ? 0 : all.front().desc.seq);
      return;
    }
  }
  const bool empty = works_.empty();
  lock.unlock();
  for (auto& s : completed) s->complete();
  if (empty) drained_.notify_all();
}

void Watchdog::fail_(std::deque<WatchedWork>& works, ErrorCode code, const std::string& message, bool report,
                     int64_t culprit_seq) {
  // Called with mu_ held (through poll_once's lock): poison first so that no new work is accepted.
  failure_.emplace(code, "the communicator (rank " + std::to_string(backend_.rank) + " of " +
                             std::to_string(backend_.size) + ", " + backend_.name +
                             ") is unusable after an earlier failure: " + message);
  head_started_ = Clock::time_point{};
  mu_.unlock();
  // Kernels stuck waiting for peers return only after the abort; fail the works afterwards, so
  // that a waiter who frees its tensors does so after the device stopped touching them.
  if (backend_.abort) {
    try {
      backend_.abort();
    } catch (...) {
    }
  }
  if (report) {
    std::ostringstream text;
    text << "kirzl comm: " << (code == ErrorCode::Timeout ? "collective timeout" : "collective failure") << " (backend "
         << backend_.name << ", " << backend_.size << " ranks)\n"
         << message << "\n";
    for (const WatchedWork& w : works) recorder_.finished(w.desc.seq, false, w.desc.seq == culprit_seq ? message : "");
    text << recorder_.dump(backend_.rank);
    write_report(text.str());
  }
  // The work the failure is about gets the message itself; every other pending work says it was
  // caught up in that failure.
  for (WatchedWork& w : works) {
    const std::string m = w.desc.seq == culprit_seq
                              ? message
                              : w.desc.long_str() + " was pending on rank " + std::to_string(backend_.rank) +
                                    " when the communicator failed: " + message;
    if (!report) recorder_.finished(w.desc.seq, false, m);
    w.state->fail(std::make_exception_ptr(Error(code, m)));
  }
  works.clear();
  mu_.lock();
  drained_.notify_all();
}

}  // namespace kirzl::comm::detail
