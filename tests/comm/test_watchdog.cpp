// The device-work watchdog (Note [watchdog]) driven by fake device callbacks: completion in order,
// timeouts with the readable report, signature mismatches, asynchronous errors, the abort, and
// poisoning. The NCCL backend wires the same class to CUDA events and ncclCommGetAsyncError.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <kirzl/kirzl.hpp>

#include "comm/watchdog.h"
#include "support/expect_error.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using namespace std::chrono_literals;

namespace {

// Holds the fake abort back until the test opens it (or 60 s pass), so that "the waiters woke
// while the abort still ran" is a fact of the test, not a race against a sleep.
class AbortGate {
 public:
  void hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, 60s, [&] { return !held_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

struct FakeDevice {
  std::atomic<int> finished_upto{0};  // works with seq <= this have finished on the "device"
  std::atomic<int> aborts{0};
  std::atomic<bool> async_failed{false};
  std::atomic<int> mismatch_at{0};  // seq whose headers disagree (0: none)
  std::atomic<int> throw_at{0};     // seq whose completion check throws, like cudaEventQuery after a fault (0: none)
  std::atomic<bool> async_throws{false};  // the asynchronous-error check throws a non-kirzl exception
  std::atomic<bool> two_done_three_bad{false};  // at once: #1 and #2 finished, #3's headers disagree
  AbortGate abort_gate;  // a held gate: the abort blocks (ncclCommAbort waits for the device)
};

struct Fixture {
  FakeDevice dev;
  FlightRecorder recorder;
  std::unique_ptr<Watchdog> wd;
  int64_t seq = 0;

  explicit Fixture(int rank = 1, int size = 4, std::chrono::microseconds idle_interval = 100ms) {
    Watchdog::Backend b;
    b.name = "nccl";
    b.rank = rank;
    b.size = size;
    b.async_error = [this]() -> std::optional<std::string> {
      if (dev.async_throws) throw std::runtime_error("the driver went away");
      if (dev.async_failed) return std::string("unhandled system error (remote process exited)");
      return std::nullopt;
    };
    b.abort = [this] {
      dev.abort_gate.pass();
      ++dev.aborts;
    };
    wd = std::make_unique<Watchdog>(std::move(b), recorder, 500us, idle_interval);
  }

  comm::Work submit(std::chrono::milliseconds timeout = 10s, std::string tag = "bucket 0: fc.weight",
                    std::shared_ptr<void> keep = nullptr) {
    WatchedWork w;
    w.keep = std::move(keep);
    w.desc.kind = OpKind::AllReduce;
    w.desc.dtype = DType::f32;
    w.desc.count = 1000;
    w.desc.seq = ++seq;
    w.desc.tag = std::move(tag);
    w.desc.timeout = timeout;
    w.state = std::make_shared<WorkState>();
    w.state->desc = w.desc;
    const int64_t s = w.desc.seq;
    w.finished = [this, s] {
      if (dev.throw_at.load() == s)
        throw Error(ErrorCode::Cuda, "cudaEventQuery failed: cudaErrorLaunchFailure (unspecified launch failure)");
      return dev.finished_upto.load() >= s || (dev.two_done_three_bad && s <= 2);
    };
    w.mismatch = [this, s]() -> std::optional<std::string> {
      if (dev.mismatch_at.load() == s || (dev.two_done_three_bad && s == 3)) return std::string("collective mismatch: all_reduce #") + std::to_string(s) + " on rank 0 does not match";
      return std::nullopt;
    };
    w.arrival = [] { return std::string("At least one rank has not issued this collective."); };
    auto state = w.state;
    wd->watch(std::move(w));
    return comm::Work(state);
  }
};

// Note [watchdog wake-up]: the first work after an idle spell is looked at at once, not when the
// idle interval (here 1 hour) runs out. Before, watch() woke the thread without a reason to poll,
// and it slept on.
TEST(Watchdog, TheFirstWorkAfterAnIdleSpellIsPolledAtOnce) {
  Fixture f(1, 4, std::chrono::hours(1));
  std::this_thread::sleep_for(20ms);  // the thread is in its idle wait
  for (int round = 1; round <= 2; ++round) {
    f.dev.finished_upto = round;  // finished on the "device" before it is even watched
    auto w = f.submit();
    for (int i = 0; i < 1000 && !w.is_completed(); ++i) std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(w.is_completed()) << "round " << round << ": not retired within 5 s";
    EXPECT_TRUE(w.succeeded());
    std::this_thread::sleep_for(20ms);  // idle again
  }
}

// Note [fail before abort]: the waiters wake first and the abort follows on the watchdog's thread,
// so a test reads the abort count once it has happened (within 30 s), then a little later again,
// so that a second abort would be seen too.
int aborts_after_failure(const Fixture& f) {
  for (int i = 0; i < 3000 && f.dev.aborts.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(20ms);
  return f.dev.aborts.load();
}

}  // namespace

TEST(Watchdog, CompletesWorksInOrderAsTheDeviceFinishesThem) {
  Fixture f;
  auto a = f.submit(), b = f.submit(), c = f.submit();
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(a.is_completed());
  f.dev.finished_upto = 2;
  a.synchronize();
  b.synchronize();
  EXPECT_TRUE(a.succeeded());
  EXPECT_TRUE(b.succeeded());
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(c.is_completed()) << "#3 has not finished on the device";
  EXPECT_EQ(f.wd->outstanding(), 1u);
  f.dev.finished_upto = 3;
  f.wd->drain();
  EXPECT_TRUE(c.succeeded());
  EXPECT_EQ(f.dev.aborts.load(), 0);
  EXPECT_FALSE(f.wd->failure().has_value());
}

// Note [fail before abort]: a slow abort (the H200's ncclCommAbort waited 1.3 s for a held stream)
// must not delay the waiters, and the failed work's tensors stay alive until the abort returned.
TEST(Watchdog, WaitersWakeAtTheTimeoutWhileASlowAbortRunsAndTensorsOutliveIt) {
  Fixture f;
  f.dev.abort_gate.hold();  // the abort does not return until opened below (or after 60 s)
  auto tensors = std::make_shared<int>(7);
  std::weak_ptr<int> alive = tensors;
  auto stuck = f.submit(60ms, "held back", std::move(tensors));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_KIRZL_ERROR(stuck.synchronize(), ErrorCode::Timeout, "all_reduce #1", "held back");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "the waiter woke only after the abort";
  EXPECT_EQ(f.dev.aborts.load(), 0) << "the abort is still held";
  EXPECT_FALSE(alive.expired()) << "the work's tensors were released before the abort returned";
  f.dev.abort_gate.open();
  for (int i = 0; i < 3000 && (f.dev.aborts.load() == 0 || !alive.expired()); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(aborts_after_failure(f), 1);
  EXPECT_TRUE(alive.expired()) << "released once the abort has returned";
}

TEST(Watchdog, ATimeoutAbortsAndFailsEveryPendingWorkWithAReport) {
  const auto report = std::filesystem::temp_directory_path() / ("kirzl_watchdog_report_" + std::to_string(::getpid()) + ".txt");
  kirzl::testing::ScopedEnv report_env("KIRZL_REPORT", report.string());
  Fixture f(/*rank=*/1, /*size=*/4);
  f.dev.finished_upto = 1;
  auto done = f.submit();
  auto stuck = f.submit(60ms, "bucket 7: layers.11.mlp.fc.weight");
  auto behind = f.submit();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_KIRZL_ERROR(stuck.synchronize(), ErrorCode::Timeout, "all_reduce #2", "f32 x 1000", "bucket 7: layers.11.mlp.fc.weight",
                     "timed out after 60 ms on rank 1", "nccl, 4 ranks", "has not issued this collective");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(done.succeeded());
  EXPECT_KIRZL_ERROR(behind.synchronize(), ErrorCode::Timeout, "all_reduce #3", "was pending on rank 1", "all_reduce #2");
  EXPECT_EQ(aborts_after_failure(f), 1) << "ncclCommAbort exactly once";
  // Poisoned: the next collective fails at once, naming the first failure.
  EXPECT_KIRZL_ERROR(f.submit(), ErrorCode::Timeout, "unusable after an earlier failure", "all_reduce #2");
  std::ifstream in(report);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("collective timeout (backend nccl, 4 ranks)"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("rank 1:"), std::string::npos) << "the flight recorder's table: " << text.str();
  EXPECT_NE(text.str().find("FAILED"), std::string::npos) << text.str();
  std::filesystem::remove(report);
}

TEST(Watchdog, TheTimeoutStartsWhenTheWorkBeforeItFinished) {
  Fixture f;
  auto first = f.submit(10s);
  auto second = f.submit(150ms);
  std::this_thread::sleep_for(250ms);  // longer than #2's timeout, but #2 has not started yet
  EXPECT_FALSE(second.is_completed());
  f.dev.finished_upto = 2;
  first.synchronize();
  second.synchronize();
  EXPECT_TRUE(second.succeeded());
}

TEST(Watchdog, ASignatureMismatchFailsAtOnceEvenWhileTheHeadHangs) {
  Fixture f;
  auto a = f.submit();
  auto b = f.submit();
  f.dev.mismatch_at = 2;  // #1 hangs on the device, #2's headers already disagree
  EXPECT_KIRZL_ERROR(b.synchronize(), ErrorCode::InvalidArgument, "collective mismatch", "all_reduce #2");
  EXPECT_KIRZL_ERROR(a.synchronize(), ErrorCode::InvalidArgument, "all_reduce #1", "pending");
  EXPECT_EQ(aborts_after_failure(f), 1);
}

TEST(Watchdog, AMismatchIsAnErrorEvenWhenTheDeviceFinished) {
  Fixture f;
  f.dev.mismatch_at = 1;
  f.dev.finished_upto = 1;
  auto a = f.submit();
  EXPECT_KIRZL_ERROR(a.synchronize(), ErrorCode::InvalidArgument, "collective mismatch");
}

TEST(Watchdog, AnAsynchronousBackendErrorFailsThePendingWorks) {
  Fixture f(0, 2);
  auto a = f.submit();
  f.dev.async_failed = true;
  EXPECT_KIRZL_ERROR(a.synchronize(), ErrorCode::Nccl, "asynchronous error on rank 0 of 2", "remote process exited",
                     "all_reduce #1");
  EXPECT_EQ(aborts_after_failure(f), 1);
}

TEST(Watchdog, DestructionWithNothingOutstandingIsQuick) {
  const auto t0 = std::chrono::steady_clock::now();
  { Fixture f; }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

// Note [watchdog errors]: a callback that throws on the watchdog thread (a sticky CUDA error) must
// fail the pending works with its message, never std::terminate the process.
TEST(Watchdog, ACompletionCheckThatThrowsFailsThePendingWorksAndAborts) {
  Fixture f(2, 4);
  f.dev.finished_upto = 1;
  auto done = f.submit();
  auto broken = f.submit();
  auto behind = f.submit();
  f.dev.throw_at = 2;
  EXPECT_KIRZL_ERROR(broken.synchronize(), ErrorCode::Cuda, "cudaErrorLaunchFailure", "all_reduce #2", "rank 2 of 4");
  EXPECT_KIRZL_ERROR(behind.synchronize(), ErrorCode::Cuda, "all_reduce #3", "was pending on rank 2",
                     "cudaErrorLaunchFailure");
  EXPECT_TRUE(done.succeeded()) << "#1 finished before the error";
  EXPECT_EQ(aborts_after_failure(f), 1);
  ASSERT_TRUE(f.wd->failure().has_value());
  EXPECT_KIRZL_ERROR(f.submit(), ErrorCode::Cuda, "unusable after an earlier failure", "cudaErrorLaunchFailure");
  std::this_thread::sleep_for(5ms);  // the thread goes on polling a failed communicator harmlessly
}

TEST(Watchdog, AnAsyncErrorCheckThatThrowsPoisonsTheCommunicator) {
  Fixture f(0, 2);
  f.dev.async_throws = true;
  for (int i = 0; i < 6000 && !f.wd->failure(); ++i) std::this_thread::sleep_for(5ms);  // idle checks every 100 ms
  ASSERT_TRUE(f.wd->failure().has_value());
  EXPECT_EQ(f.wd->failure()->code(), ErrorCode::Internal) << "not a kirzl::Error: Internal";
  EXPECT_NE(std::string(f.wd->failure()->what()).find("the driver went away"), std::string::npos)
      << f.wd->failure()->what();
  EXPECT_EQ(aborts_after_failure(f), 1);
}

TEST(Watchdog, WorksThatFinishedBeforeAFailureInTheSamePollSucceed) {
  Fixture f;
  auto a = f.submit(), b = f.submit(), c = f.submit();
  f.dev.two_done_three_bad = true;  // the next poll retires #1 and #2, then finds #3's mismatch
  EXPECT_KIRZL_ERROR(c.synchronize(), ErrorCode::InvalidArgument, "collective mismatch");
  EXPECT_TRUE(a.is_completed());
  EXPECT_TRUE(a.succeeded());
  EXPECT_TRUE(b.succeeded());
}
