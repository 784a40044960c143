// The in-process backend: every collective, dtype and op at world sizes 1-4 against closed forms,
// asynchronous Work, split, argument errors, and failing loudly (mismatch, timeout, a rank that
// throws before its collective).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <latch>
#include <sstream>
#include <thread>

#include <kirzl/comm.hpp>
#include <kirzl/core/allocator.hpp>
#include <kirzl/kirzl.hpp>

#include "comm/collective_cases.hpp"
#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using namespace std::chrono_literals;
using comm::ReduceOp;
using namespace kirzl::testing::comm_cases;
using kirzl::testing::run_rank_threads;

namespace {

// Counts a latch down when the scope ends, by an exception too, so that a rank waiting for it
// cannot hang when the rank it waits for fails first. A null latch: nothing.
class CountDownAtExit {
 public:
  explicit CountDownAtExit(std::latch* latch) : latch_(latch) {}
  ~CountDownAtExit() {
    if (latch_) latch_->count_down();
  }
  CountDownAtExit(const CountDownAtExit&) = delete;
  CountDownAtExit& operator=(const CountDownAtExit&) = delete;

 private:
  std::latch* latch_;
};

}  // namespace

TEST(InProcessCommunicator, AllReduceEveryDtypeOpAndSize) {
  for (int n : {1, 2, 3, 4}) {
    run_rank_threads(n, [&](int r, comm::Communicator& c) {
      EXPECT_EQ(c.rank(), r);
      EXPECT_EQ(c.size(), n);
      EXPECT_EQ(c.backend(), "inprocess");
      for (DType dt : kAllDtypes)
        for (ReduceOp op : kAllOps)
          for (int64_t len : {0, 1, 7}) {
            Tensor t = make(len, dt, [&](int64_t i) { return op == ReduceOp::Prod ? g(r, i) : f(r, i); });
            c.all_reduce(t, {.op = op}).wait();
            auto v = t.to_vector<double>();
            ASSERT_EQ(static_cast<int64_t>(v.size()), len);
            for (int64_t i = 0; i < len; ++i)
              expect_close(v[i], expected_reduce(op, dt, n, i), dt,
                           std::string(dtype_name(dt)) + " " + comm::to_string(op) + " n=" + std::to_string(n) +
                               " len=" + std::to_string(len) + " i=" + std::to_string(i));
          }
      // One large f32 sum (odd size, so the per-rank slices are uneven).
      const int64_t big = (1 << 20) + 3;
      Tensor t = make(big, DType::f32, [&](int64_t i) { return f(r, i); });
      c.all_reduce(t).wait();
      const float* p = t.data<float>();
      int64_t bad = 0;
      for (int64_t i = 0; i < big; ++i) bad += p[i] != static_cast<float>(expected_reduce(ReduceOp::Sum, DType::f32, n, i));
      EXPECT_EQ(bad, 0);
    });
  }
}

TEST(InProcessCommunicator, IntegerAvgTruncatesAndSumsWrap) {
  run_rank_threads(3, [&](int r, comm::Communicator& c) {
    Tensor a = from_vector<int32_t>({r == 0 ? 1 : 0, -2});  // sums 1 and -6 -> avg 0 and -2
    c.all_reduce(a, {.op = ReduceOp::Avg}).wait();
    EXPECT_EQ(a.to_vector<int32_t>(), (std::vector<int32_t>{0, -2}));
    Tensor u = from_vector<uint8_t>({200});  // 600 mod 256 = 88
    c.all_reduce(u).wait();
    EXPECT_EQ(u.to_vector<int>()[0], 88);
  });
}

TEST(InProcessCommunicator, ResultsAreBitwiseIdenticalOnEveryRank) {
  std::vector<std::vector<float>> got(4);
  run_rank_threads(4, [&](int r, comm::Communicator& c) {
    Generator gen(r);
    Tensor t = randn({1001}, {}, &gen);
    c.all_reduce(t).wait();
    got[r] = t.to_vector<float>();
  });
  for (int r = 1; r < 4; ++r) EXPECT_EQ(got[r], got[0]);
}

TEST(InProcessCommunicator, BroadcastEveryDtypeAndRoot) {
  for (int n : {1, 2, 3, 4}) {
    run_rank_threads(n, [&](int r, comm::Communicator& c) {
      for (DType dt : kAllDtypes)
        for (int root = 0; root < n; ++root)
          for (int64_t len : {0, 1, 7}) {
            Tensor t = make(len, dt, [&](int64_t i) { return f(r, i); });
            c.broadcast(t, {.root = root}).wait();
            auto v = t.to_vector<double>();
            for (int64_t i = 0; i < len; ++i) EXPECT_EQ(v[i], f(root, i)) << dtype_name(dt) << " root " << root;
          }
      Tensor big = make((1 << 20) + 3, DType::f32, [&](int64_t i) { return f(r, i); });
      c.broadcast(big, {.root = n - 1}).wait();
      EXPECT_EQ(big.to_vector<float>()[12345], f(n - 1, 12345));
    });
  }
}

TEST(InProcessCommunicator, AllGatherLayoutEveryDtype) {
  for (int n : {1, 2, 3, 4}) {
    run_rank_threads(n, [&](int r, comm::Communicator& c) {
      for (DType dt : kAllDtypes)
        for (int64_t len : {0, 1, 7}) {
          Tensor in = make(len, dt, [&](int64_t i) { return f(r, i); });
          Tensor out = zeros({n, len}, {.dtype = dt});  // any shape with n * len elements
          c.all_gather(out, in).wait();
          auto v = out.to_vector<double>();
          for (int q = 0; q < n; ++q)
            for (int64_t i = 0; i < len; ++i) EXPECT_EQ(v[q * len + i], f(q, i)) << dtype_name(dt);
        }
      const int64_t big = (1 << 20) + 3;
      Tensor in = make(big, DType::f32, [&](int64_t i) { return f(r, i); });
      Tensor out = empty({n * big});
      c.all_gather(out, in).wait();
      const float* p = out.data<float>();
      for (int q = 0; q < n; ++q) EXPECT_EQ(p[q * big + big - 1], f(q, big - 1));
    });
  }
}

TEST(InProcessCommunicator, ReduceScatterEveryDtypeAndOp) {
  for (int n : {1, 2, 3, 4}) {
    run_rank_threads(n, [&](int r, comm::Communicator& c) {
      for (DType dt : kAllDtypes)
        for (ReduceOp op : kAllOps)
          for (int64_t len : {0, 1, 7}) {
            // Global index j = block * len + i; rank q holds f(q, j) (or g for Prod).
            Tensor in = make(n * len, dt, [&](int64_t j) { return op == ReduceOp::Prod ? g(r, j) : f(r, j); });
            Tensor out = full({len}, -1, {.dtype = dt});
            c.reduce_scatter(out, in, {.op = op}).wait();
            auto v = out.to_vector<double>();
            for (int64_t i = 0; i < len; ++i)
              expect_close(v[i], expected_reduce(op, dt, n, r * len + i), dt,
                           std::string(dtype_name(dt)) + " " + comm::to_string(op) + " n=" + std::to_string(n));
          }
      const int64_t big = (1 << 20) + 3;
      Tensor in = make(n * big, DType::f32, [&](int64_t j) { return f(r, j); });
      Tensor out = empty({big});
      c.reduce_scatter(out, in).wait();
      EXPECT_EQ(out.to_vector<float>()[big - 1], expected_reduce(ReduceOp::Sum, DType::f32, n, r * big + big - 1));
    });
  }
}

TEST(InProcessCommunicator, WorkIsAsynchronousAndCompletesInOrder) {
  EXPECT_TRUE(comm::Work().is_completed());
  comm::Work().wait();
  // Rank 1 issues its collectives only after rank 0 has issued and checked all of its own: were
  // all_reduce to block until every rank arrived, rank 0 would time out (20 s) instead.
  std::latch rank0_checked(1);
  run_rank_threads(
      2,
      [&](int r, comm::Communicator& c) {
        if (r == 1) rank0_checked.wait();
        std::vector<Tensor> ts;
        std::vector<comm::Work> ws;
        {
          CountDownAtExit release(r == 0 ? &rank0_checked : nullptr);
          for (int k = 0; k < 5; ++k) {
            ts.push_back(full({3}, k + r));
            ws.push_back(c.all_reduce(ts.back()));
          }
          if (r == 0) {
            EXPECT_FALSE(ws[0].is_completed());
            // A shorter wait than the collective needs, naming it.
            EXPECT_KIRZL_ERROR(ws[0].wait(10ms), ErrorCode::Timeout,
                               "Work::wait: all_reduce #1 (f32 x 3, sum) did not complete within 10 ms");
          }
        }
        comm::Work copy = ws.back();
        copy.wait();
        EXPECT_TRUE(ws.back().is_completed());
        for (int k = 0; k < 5; ++k) {
          EXPECT_TRUE(ws[k].is_completed()) << "collectives complete in issue order";
          EXPECT_EQ(ts[k].to_vector<float>()[0], 2 * k + 1);
        }
        // Waiting from another thread.
        Tensor t = ones({4});
        comm::Work w = c.all_reduce(t);
        std::thread([w] { w.wait(); }).join();
        EXPECT_EQ(t.to_vector<float>()[3], 2);
        c.barrier().wait();
      },
      {.timeout = 20s});
}

// Every collective with `blocking` returns done, with its result (Note [blocking collectives]).
TEST(InProcessCommunicator, BlockingCollectivesReturnDone) {
  run_rank_threads(3, [&](int r, comm::Communicator& c) {
    const int n = c.size();
    Tensor t = full({5}, r + 1);
    EXPECT_TRUE(c.all_reduce(t, {.blocking = true}).is_completed());
    EXPECT_EQ(t.to_vector<float>(), std::vector<float>(5, 6));
    Tensor b = full({2}, r);
    EXPECT_TRUE(c.broadcast(b, {.root = 2, .blocking = true}).is_completed());
    EXPECT_EQ(b.to_vector<float>(), std::vector<float>(2, 2));
    Tensor in = full({2}, r), out = zeros({2 * n});
    EXPECT_TRUE(c.all_gather(out, in, {.blocking = true}).is_completed());
    EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{0, 0, 1, 1, 2, 2}));
    Tensor rs_in = full({2 * n}, r + 1), rs_out = zeros({2});
    EXPECT_TRUE(c.reduce_scatter(rs_out, rs_in, {.op = ReduceOp::Max, .blocking = true}).is_completed());
    EXPECT_EQ(rs_out.to_vector<float>(), std::vector<float>(2, 3));
    EXPECT_TRUE(c.barrier({.blocking = true}).is_completed());
  });
}

// A blocking collective runs after the ones queued before it, on every rank: Sum then Max on one
// tensor leaves the sum (3); the other order would leave 2 + 2 = 4.
TEST(InProcessCommunicator, BlockingCollectiveRunsAfterTheQueuedOnes) {
  run_rank_threads(2, [&](int r, comm::Communicator& c) {
    Tensor t = full({4}, r + 1);
    comm::Work sum = c.all_reduce(t);
    c.all_reduce(t, {.op = ReduceOp::Max, .blocking = true});
    EXPECT_TRUE(sum.is_completed());
    EXPECT_EQ(t.to_vector<float>(), std::vector<float>(4, 3));
  });
}

// A blocking collective's failure is thrown by the call itself.
TEST(InProcessCommunicator, BlockingCollectiveThrowsItsFailure) {
  run_rank_threads(
      2,
      [&](int r, comm::Communicator& c) {
        Tensor t = zeros({r == 0 ? 3 : 5});
        EXPECT_KIRZL_ERROR(c.all_reduce(t, {.blocking = true}), ErrorCode::InvalidArgument,
                           "all_reduce #1 (f32 x 3, sum) on rank 0 does not match all_reduce #1 (f32 x 5, sum) on rank 1");
      },
      {.timeout = 60s});
}

// Two threads of rank 0 issue blocking collectives while rank 1 is late: one of them runs the
// first collective itself and returns when it is done, which leaves the second to the
// communication thread; that thread must have been woken (Note [blocking collectives]), or the
// second thread waits for ever.
TEST(InProcessCommunicator, BlockingCollectivesFromTwoThreadsOfOneRankComplete) {
  run_rank_threads(
      2,
      [&](int r, comm::Communicator& c) {
        Tensor a = full({3}, r + 1), b = full({3}, 10 * (r + 1));
        if (r == 1) {
          std::this_thread::sleep_for(300ms);  // by then both of rank 0's threads wait
          c.all_reduce(a).wait();
          c.all_reduce(b).wait();
        } else {
          std::promise<void> second_done;
          auto second_finished = second_done.get_future();
          std::thread first([&] { c.all_reduce(a, {.blocking = true}); });
          std::this_thread::sleep_for(50ms);  // the first is issued (and usually running) first
          std::thread second([&] {
            c.all_reduce(b, {.blocking = true});
            second_done.set_value();
          });
          if (second_finished.wait_for(30s) != std::future_status::ready) {
            std::fprintf(stderr, "FAILED: the second thread's blocking all_reduce never completed\n");
            std::abort();  // its thread cannot be joined
          }
          first.join();
          second.join();
        }
        EXPECT_EQ(a.to_vector<float>()[0], 3);
        EXPECT_EQ(b.to_vector<float>()[0], 30);
      },
      {.timeout = 60s});
}

// The communicator keeps a collective's tensors only until it is done, so that a caller may drop
// its own handle right after the launch (DDP's ZeRO-2 buckets, Note [ZeRO-2 bucket lifetime]):
// the input's memory returns to the allocator once the collective has run.
TEST(InProcessCommunicator, ACollectiveLetsGoOfItsTensorsWhenDone) {
  constexpr int64_t kElems = int64_t{1} << 20;  // 4 MB of f32 per rank
  std::latch launched(2);
  std::atomic<int64_t> before{0};
  run_rank_threads(2, [&](int rank, comm::Communicator& c) {
    if (rank == 0) before = static_cast<int64_t>(cpu_allocator_stats().allocated);
    Tensor out = zeros({kElems / 2});
    comm::Work work;
    {
      Tensor in = ones({kElems});
      work = c.reduce_scatter(out, in, {});
      launched.arrive_and_wait();
    }  // the caller's handle to `in` is gone; the communicator's is the last one
    work.wait();
    EXPECT_EQ(out.to_vector<float>()[0], 2.0f);
    // The worker thread drops the op right after finishing it: allow it a moment.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    int64_t now = 0;
    do {
      now = static_cast<int64_t>(cpu_allocator_stats().allocated);
      // Live: both outputs (2 MB each); both inputs (4 MB each) freed.
      if (now - before.load() < kElems * 6) break;
      std::this_thread::sleep_for(1ms);
    } while (std::chrono::steady_clock::now() < deadline);
    EXPECT_LT(now - before.load(), kElems * 6) << "the collectives' inputs are still alive";
  });
}

TEST(InProcessCommunicator, SplitIntoTwoGroupsByColor) {
  run_rank_threads(4, [&](int r, comm::Communicator& c) {
    // Even and odd ranks; key -r reverses the order within each group.
    auto sub = c.split(r % 2, -r);
    ASSERT_NE(sub, nullptr);
    EXPECT_EQ(sub->size(), 2);
    EXPECT_EQ(sub->rank(), r < 2 ? 1 : 0);
    Tensor t = full({5}, r);
    sub->all_reduce(t).wait();
    EXPECT_EQ(t.to_vector<float>()[4], r % 2 == 0 ? 0 + 2 : 1 + 3);
    // The parent still works, and a negative color opts out.
    auto only_zero = c.split(r == 0 ? 7 : -1, 0);
    EXPECT_EQ(only_zero == nullptr, r != 0);
    if (only_zero) {
      EXPECT_EQ(only_zero->size(), 1);
    }
    c.barrier().wait();
  });
}

TEST(InProcessCommunicator, ArgumentErrorsNameOpShapesAndDtypes) {
  auto c = comm::make_in_process_group(2);
  Tensor nc = zeros({2, 3}).t();
  EXPECT_KIRZL_ERROR(c[0]->all_reduce(nc), ErrorCode::InvalidArgument, "all_reduce", "contiguous", "f32[3, 2]");
  EXPECT_KIRZL_ERROR(c[0]->broadcast(nc), ErrorCode::InvalidArgument, "broadcast", "contiguous");
  Tensor in = zeros({3}), out = zeros({5});
  EXPECT_KIRZL_ERROR(c[0]->all_gather(out, in), ErrorCode::InvalidArgument, "all_gather", "f32[5]", "f32[3]", "2 * 3 = 6");
  EXPECT_KIRZL_ERROR(c[0]->reduce_scatter(in, out), ErrorCode::InvalidArgument, "reduce_scatter", "f32[5]", "f32[3]");
  Tensor out6 = zeros({6}, {.dtype = DType::f64});
  EXPECT_KIRZL_ERROR(c[0]->all_gather(out6, in), ErrorCode::InvalidArgument, "all_gather", "f64[6]", "f32[3]", "dtype");
  Tensor t = zeros({4});
  EXPECT_KIRZL_ERROR(c[0]->broadcast(t, {.root = 2}), ErrorCode::InvalidArgument, "broadcast", "root 2", "size 2");
  EXPECT_KIRZL_ERROR(c[0]->broadcast(t, {.root = -1}), ErrorCode::InvalidArgument, "root -1");
  EXPECT_KIRZL_ERROR(comm::make_in_process_group(0), ErrorCode::InvalidArgument, "at least 1");
  // Argument errors are raised before the collective is issued: the communicator still works.
  run_rank_threads(1, [&](int, comm::Communicator& one) {
    Tensor x = full({2}, 3);
    one.all_reduce(x, {.op = ReduceOp::Avg}).wait();
    EXPECT_EQ(x.to_vector<float>()[1], 3);
  });
}

TEST(InProcessCommunicator, MismatchFailsAtOnceOnEveryRankNamingBothSides) {
  std::vector<std::string> msgs(2);
  auto t0 = std::chrono::steady_clock::now();
  run_rank_threads(
      2,
      [&](int r, comm::Communicator& c) {
        Tensor big = zeros({1000}), small = zeros({10});
        comm::Work w = r == 0 ? c.all_reduce(big, {.tag = "bucket 0"}) : c.broadcast(small, {.root = 0});
        try {
          w.wait();
          ADD_FAILURE() << "rank " << r << ": the mismatch was not detected";
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
          msgs[r] = e.what();
        }
        // The communicator is poisoned: the next collective throws at once.
        EXPECT_KIRZL_ERROR(c.barrier(), ErrorCode::InvalidArgument, "unusable", "does not match");
      },
      {.timeout = 60s});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the mismatch must be found, not the 60 s timeout";
  for (const auto& m : msgs) {
    EXPECT_NE(m.find("all_reduce #1 (f32 x 1000, sum) on rank 0 does not match broadcast #1 (f32 x 10, root 0) on rank 1"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("bucket 0"), std::string::npos) << m;
  }
}

TEST(InProcessCommunicator, TimeoutNamesTheMissingRankOnEveryRank) {
  const std::string report = ::testing::TempDir() + "kirzl_comm_report.txt";
  kirzl::testing::ScopedEnv report_env("KIRZL_REPORT", report);
  std::vector<std::string> msgs(3);
  std::vector<double> elapsed(3);
  std::latch others_timed_out(2);
  run_rank_threads(3, [&](int r, comm::Communicator& c) {
    CountDownAtExit done(r != 1 ? &others_timed_out : nullptr);
    Tensor warm = ones({2});
    c.all_reduce(warm).wait();  // #1 completes everywhere
    if (r == 1) {
      // Rank 1 skips all_reduce #2, then arrives late at something else (once the others have
      // timed out): it must fail at once.
      others_timed_out.wait();
      EXPECT_KIRZL_ERROR(c.barrier().wait(), ErrorCode::Timeout, "all_reduce #2", "rank 1");
      return;
    }
    Tensor t = ones({10});
    auto t0 = std::chrono::steady_clock::now();
    try {
      c.all_reduce(t, {.timeout = 300ms, .tag = "grads of fc"}).wait();
      ADD_FAILURE() << "no timeout";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Timeout);
      msgs[r] = e.what();
    }
    elapsed[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  for (int r : {0, 2}) {
    EXPECT_LT(elapsed[r], 20.0) << "rank " << r << ": the 300 ms timeout, not the default 300 s";
    EXPECT_GE(elapsed[r], 0.25) << "rank " << r;
    for (const char* w : {"all_reduce #2 (f32 x 10, sum)", "40 B", "grads of fc", "rank 1 has not arrived",
                          "Rank 1 last started all_reduce #1"})
      EXPECT_NE(msgs[r].find(w), std::string::npos) << "lacks '" << w << "': " << msgs[r];
  }
  std::ifstream f(report);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find("rank 1: last started all_reduce #1"), std::string::npos) << ss.str();
  EXPECT_NE(ss.str().find("rank 0: is in all_reduce #2"), std::string::npos) << ss.str();
}

TEST(InProcessCommunicator, ARankThatThrowsBeforeItsCollectiveDoesNotHangTheOthers) {
  std::atomic<int> timeouts{0};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(run_rank_threads(
                   3,
                   [&](int r, comm::Communicator& c) {
                     Tensor grads = ones({8});
                     if (r == 2) throw std::runtime_error("forward failed on rank 2");
                     try {
                       c.all_reduce(grads).wait();
                     } catch (const Error& e) {
                       EXPECT_EQ(e.code(), ErrorCode::Timeout);
                       EXPECT_NE(std::string(e.what()).find("rank 2 has not arrived"), std::string::npos) << e.what();
                       ++timeouts;
                     }
                   },
                   {.timeout = 300ms}),
               std::runtime_error);
  EXPECT_EQ(timeouts.load(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the 300 ms timeout, not the default 300 s";
}

TEST(InProcessCommunicator, DestroyingACommunicatorFailsWaitingRanksAtOnce) {
  // Rank 1 drops its communicator while rank 0 waits for it (timeout 60 s): rank 0 fails at once.
  auto group = comm::make_in_process_group(2, {.timeout = 60s});
  Tensor t = ones({4});
  auto t0 = std::chrono::steady_clock::now();
  comm::Work w = group[0]->all_reduce(t);
  // Not synchronisation: the outcome is the same whether or not rank 0 is already waiting; the
  // pause only makes the waiting case the likely one.
  std::this_thread::sleep_for(20ms);
  group[1].reset();
  EXPECT_KIRZL_ERROR(w.wait(), ErrorCode::InvalidArgument, "all_reduce #1", "rank 1 destroyed its communicator");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "at once, not after the 60 s timeout";

  // Destroying the communicator whose own collective waits interrupts it instead of blocking.
  auto pair = comm::make_in_process_group(2, {.timeout = 60s});
  comm::Work mine = pair[0]->barrier();
  std::this_thread::sleep_for(20ms);  // as above: not synchronisation
  t0 = std::chrono::steady_clock::now();
  pair[0].reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "at once, not after the 60 s timeout";
  EXPECT_KIRZL_ERROR(mine.wait(), ErrorCode::InvalidArgument, "barrier #1", "communicator was destroyed");
}

TEST(InProcessCommunicator, DefaultTimeoutComesFromTheEnvironment) {
  kirzl::testing::ScopedEnv env("KIRZL_TIMEOUT", std::nullopt);
  EXPECT_EQ(comm::make_in_process_group(1)[0]->default_timeout(), 300s);
  env.set("2.5");
  EXPECT_EQ(comm::make_in_process_group(1)[0]->default_timeout(), 2500ms);
  EXPECT_EQ(comm::make_in_process_group(1, {.timeout = 40ms})[0]->default_timeout(), 40ms);
}

TEST(InProcessCommunicator, ReduceOpNames) {
  EXPECT_STREQ(comm::to_string(ReduceOp::Sum), "sum");
  EXPECT_STREQ(comm::to_string(ReduceOp::Avg), "avg");
  EXPECT_STREQ(comm::to_string(ReduceOp::Prod), "prod");
}
