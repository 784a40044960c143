// The MPI backend under mpirun (ctest runs it at 2 and 4 ranks, label `mpi`): the same closed-form
// checks as the in-process suite, plus mismatch and timeout across processes.
//
//   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 4 --oversubscribe build/tests/comm_mpi_test_mpi_communicator
//
// main() lowers the MPI chunk size (KIRZL_MPI_MAX_COUNT) so the chunked paths for counts beyond
// INT_MAX are exercised at test sizes. Tests that poison a communicator (mismatch, timeout) run on a
// split of the world, so the world stays usable for the tests after them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <kirzl/comm.hpp>

#include "comm/collective_cases.hpp"
#include "comm/mpi_collectives.h"
#include "comm/mpi/mpi_test_main.hpp"
#include "support/expect_error.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using namespace std::chrono_literals;
using comm::ReduceOp;
using namespace kirzl::testing::comm_cases;

namespace {
comm::ProcessGroup& world() { return kirzl::testing::mpi_world(); }

// A handshake between the ranks (processes) through marker files, for ordering that must not
// depend on sleeps: signal() creates this rank's marker, wait_for(r) polls until rank r's exists.
// The directory name carries rank 0's pid (broadcast over the world), so concurrent runs do not
// meet. Each rank removes its marker when the object goes (after the test's final barrier).
class FileSignals {
 public:
  explicit FileSignals(const std::string& name) {
    Tensor pid = full({1}, static_cast<double>(::getpid()), {.dtype = DType::i64});
    world().communicator()->broadcast(pid, {.root = 0}).wait();
    base_ = ::testing::TempDir() + "kirzl_" + name + "_" + std::to_string(pid.to_vector<int64_t>()[0]) + ".rank";
  }
  ~FileSignals() {
    if (signalled_) std::remove(marker(world().rank()).c_str());
  }
  FileSignals(const FileSignals&) = delete;
  FileSignals& operator=(const FileSignals&) = delete;

  void signal() {
    std::ofstream(marker(world().rank())) << "signalled\n";
    signalled_ = true;
  }
  /// True once rank `r` has signalled; false after 60 s without.
  bool wait_for(int r) const {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!std::filesystem::exists(marker(r))) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

 private:
  std::string marker(int r) const { return base_ + std::to_string(r); }
  std::string base_;
  bool signalled_ = false;
};
}  // namespace

TEST(MpiCommunicator, ProcessGroup) {
  const auto& pg = world();
  EXPECT_EQ(pg.backend(), "mpi");
  EXPECT_GE(pg.size(), 2);
  EXPECT_EQ(pg.launcher(), "openmpi");
  EXPECT_EQ(static_cast<int>(pg.hosts().size()), pg.size());
  EXPECT_GE(pg.local_rank(), 0);
  EXPECT_LT(pg.local_rank(), pg.local_size());
  EXPECT_EQ(pg.communicator()->rank(), pg.rank());
  EXPECT_EQ(comm::init().communicator(), pg.communicator()) << "init() twice returns the same world";
}

TEST(MpiCommunicator, AllReduceEveryDtypeOpAndSize) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  for (DType dt : kAllDtypes)
    for (ReduceOp op : kAllOps)
      for (int64_t len : {0, 1, 7}) {
        Tensor t = make(len, dt, [&](int64_t i) { return op == ReduceOp::Prod ? g(r, i) : f(r, i); });
        c.all_reduce(t, {.op = op}).wait();
        auto v = t.to_vector<double>();
        for (int64_t i = 0; i < len; ++i)
          expect_close(v[i], expected_reduce(op, dt, n, i), dt,
                       std::string(dtype_name(dt)) + " " + comm::to_string(op) + " len=" + std::to_string(len));
      }
  const int64_t big = (1 << 20) + 3;  // > KIRZL_MPI_MAX_COUNT and the ring threshold: chunked ring
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    Tensor t = make(big, dt, [&](int64_t i) { return f(r, i); });
    c.all_reduce(t, {.op = ReduceOp::Avg}).wait();
    auto v = t.to_vector<double>();
    int64_t bad = 0;
    for (int64_t i = 0; i < big; ++i)
      bad += std::abs(v[i] - expected_reduce(ReduceOp::Avg, dt, n, i)) > tolerance(dt) * 8 ? 1 : 0;
    EXPECT_EQ(bad, 0) << dtype_name(dt);
  }
}

TEST(MpiCommunicator, BroadcastEveryDtypeAndRoot) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  for (DType dt : kAllDtypes)
    for (int root = 0; root < n; ++root) {
      Tensor t = make(7, dt, [&](int64_t i) { return f(r, i); });
      c.broadcast(t, {.root = root}).wait();
      auto v = t.to_vector<double>();
      for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(v[i], f(root, i)) << dtype_name(dt);
    }
  Tensor big = make((1 << 20) + 3, DType::f32, [&](int64_t i) { return f(r, i); });
  c.broadcast(big, {.root = n - 1}).wait();
  EXPECT_EQ(big.to_vector<float>()[(1 << 20) + 2], f(n - 1, (1 << 20) + 2));
}

TEST(MpiCommunicator, AllGatherAndReduceScatterLayouts) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  for (DType dt : kAllDtypes) {
    for (int64_t len : {0, 1, 7, 200003}) {  // the last one is chunked
      Tensor in = make(len, dt, [&](int64_t i) { return f(r, i); });
      Tensor out = zeros({n * len}, {.dtype = dt});
      c.all_gather(out, in).wait();
      auto v = out.to_vector<double>();
      for (int q = 0; q < n; ++q)
        for (int64_t i : {int64_t{0}, len / 2, len - 1})
          if (len > 0) {
            EXPECT_EQ(v[q * len + i], f(q, i)) << dtype_name(dt) << " len " << len;
          }
    }
    for (ReduceOp op : kAllOps)
      for (int64_t len : {0, 1, 7, 100003}) {
        Tensor in = make(n * len, dt, [&](int64_t j) { return op == ReduceOp::Prod ? g(r, j) : f(r, j); });
        Tensor out = full({len}, -1, {.dtype = dt});
        c.reduce_scatter(out, in, {.op = op}).wait();
        auto v = out.to_vector<double>();
        for (int64_t i = 0; i < len; i += (len > 100 ? 997 : 1))
          expect_close(v[i], expected_reduce(op, dt, n, r * len + i), dt,
                       std::string(dtype_name(dt)) + " " + comm::to_string(op) + " len " + std::to_string(len));
      }
  }
}

TEST(MpiCommunicator, WorkIsAsynchronous) {
  auto& c = *world().communicator();
  // Rank 1 issues its all_reduce only once rank 0 has issued and checked its own, so rank 0's
  // cannot have completed; were all_reduce to block until every rank arrived, rank 1 would wait
  // in vain (60 s) and fail.
  FileSignals rank0_checked("work_async");
  if (c.rank() == 1) {
    ASSERT_TRUE(rank0_checked.wait_for(0)) << "rank 0 blocked in all_reduce";
  }
  Tensor t = full({3}, c.rank());
  comm::Work w = c.all_reduce(t);
  if (c.rank() == 0) {
    EXPECT_FALSE(w.is_completed());
    rank0_checked.signal();
  }
  w.wait();
  EXPECT_EQ(t.to_vector<float>()[0], c.size() * (c.size() - 1) / 2);
  c.barrier().wait();
}

TEST(MpiCommunicator, SplitByColor) {
  auto& c = *world().communicator();
  const int r = c.rank(), n = c.size();
  auto sub = c.split(r % 2, -r);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->backend(), "mpi");
  EXPECT_EQ(sub->size(), (n + 1 - r % 2) / 2);
  Tensor t = full({4}, r);
  sub->all_reduce(t).wait();
  double want = 0;
  for (int q = r % 2; q < n; q += 2) want += q;
  EXPECT_EQ(t.to_vector<float>()[3], want);
  // key -r reverses the order within a group.
  EXPECT_EQ(sub->rank(), (sub->size() - 1) - r / 2);
  auto none = c.split(r == 0 ? 0 : -1, 0);
  EXPECT_EQ(none == nullptr, r != 0);
}

TEST(MpiCommunicator, MismatchFailsOnEveryRankNamingBothSides) {
  auto c = world().communicator()->split(0, world().rank());
  Tensor big = zeros({1000}), small = zeros({10});
  auto t0 = std::chrono::steady_clock::now();
  try {
    (c->rank() == 0 ? c->all_reduce(big, {.tag = "bucket 0"}) : c->broadcast(small)).wait();
    ADD_FAILURE() << "the mismatch was not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find(
                  "all_reduce #1 (f32 x 1000, sum) on rank 0 does not match broadcast #1 (f32 x 10, root 0) on rank 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the mismatch must be found, not the timeout";
  EXPECT_KIRZL_ERROR(c->barrier(), ErrorCode::InvalidArgument, "unusable");
}

// Note [fused small all-reduce]: an all-reduce that travels with the arrival check is reduced by
// every rank itself, so every rank must reduce in the same order: the same bits everywhere, for
// sums whose rounding depends on the order (f32 values of very different magnitudes, bf16).
TEST(MpiCommunicator, SmallAllReduceGivesEveryRankTheSameBits) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  // The largest fused all-reduce, the smallest unfused one, and a short odd one.
  // Around the tail: the longest payload sent whole, and one element more (Note [arrival tail]).
  const int64_t limit = std::max<int64_t>(comm::detail::fused_payload_bytes(n), 64);
  const int64_t whole = comm::detail::arrival_whole_payload_bytes();
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64})
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg})
      for (int64_t len : {limit / static_cast<int64_t>(dtype_size(dt)), limit / static_cast<int64_t>(dtype_size(dt)) + 1,
                          int64_t{37}, whole / static_cast<int64_t>(dtype_size(dt)),
                          whole / static_cast<int64_t>(dtype_size(dt)) + 1}) {
      // Rank q's element i: magnitudes 1e-3 to 1e2 apart, sums within f16's range at every length.
      auto value = [](int q, int64_t i) {
        return (q % 2 ? 1e-3 : 1.0) * (1.0 + 0.37 * static_cast<double>(i % 61)) * (q + 1) * (i % 3 == 0 ? 1e2 : 1);
      };
      std::vector<double> v(len);
      for (int64_t i = 0; i < len; ++i) v[i] = value(r, i);
      Tensor t = from_vector(v, {len}).to(dt);
      c.all_reduce(t, {.op = op}).wait();
      Tensor mine = t.to(DType::f64);
      Tensor all = zeros({n * len}, {.dtype = DType::f64});
      c.all_gather(all, mine).wait();
      const auto got = all.to_vector<double>();
      for (int q = 1; q < n; ++q)
        for (int64_t i = 0; i < len; ++i)
          ASSERT_EQ(got[q * len + i], got[i]) << dtype_name(dt) << " " << comm::to_string(op) << " element " << i
                                              << ": rank " << q << " differs from rank 0";
      for (int64_t i = 0; i < len; ++i) {
        double want = 0;
        for (int q = 0; q < n; ++q) want += value(q, i);
        if (op == ReduceOp::Avg) want /= n;
        EXPECT_NEAR(got[i], want, std::abs(want) * (dt == DType::bf16 ? 2e-2 : dt == DType::f16 ? 4e-3 : 1e-6));
      }
    }
}

// Two small all-reduces of different lengths: both travel in the arrival slot, which has the same
// size on every rank, so MPI sees matching calls and the check names both sides.
TEST(MpiCommunicator, MismatchedSmallAllReducesFailNamingBothSides) {
  auto c = world().communicator()->split(0, world().rank());
  Tensor t = zeros({c->rank() == 0 ? 3 : 5});
  try {
    c->all_reduce(t).wait();
    ADD_FAILURE() << "the mismatch was not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("all_reduce #1 (f32 x 3, sum) on rank 0 does not match all_reduce #1 (f32 x 5, sum) on rank 1"),
              std::string::npos)
        << e.what();
  }
}

// One rank's all-reduce travels with the arrival message, the other's (too large) does not: the
// messages differ in length, which the receives (sized for the largest) must take, and the check
// must still name both sides rather than fail inside MPI.
TEST(MpiCommunicator, MismatchedFusedAndUnfusedAllReducesFailNamingBothSides) {
  auto c = world().communicator()->split(0, world().rank());
  const int64_t large = std::max<int64_t>(comm::detail::fused_payload_bytes(c->size()), 64) / 4 + 1;
  Tensor t = zeros({c->rank() == 0 ? 2 : large});
  try {
    c->all_reduce(t).wait();
    ADD_FAILURE() << "the mismatch was not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("all_reduce #1 (f32 x 2, sum) on rank 0 does not match all_reduce #1 (f32 x " +
                                         std::to_string(large) + ", sum) on rank 1"),
              std::string::npos)
        << e.what();
  }
}

// Rank 0's fused all-reduce is long enough to send a tail (Note [arrival tail]), the others' are
// not: the ranks must compare the headers before they wait for tails, and name both sides.
TEST(MpiCommunicator, MismatchedTailedAndWholeArrivalsFailNamingBothSides) {
  auto c = world().communicator()->split(0, world().rank());
  const int64_t tailed = comm::detail::arrival_whole_payload_bytes() / 4 + 2;
  if (tailed * 4 > comm::detail::fused_payload_bytes(c->size()))
    GTEST_SKIP() << "all-reduces of " << tailed * 4 << " B are not fused here (KIRZL_MPI_FUSED_BYTES, ranks)";
  Tensor t = zeros({c->rank() == 0 ? tailed : 2});
  auto t0 = std::chrono::steady_clock::now();
  try {
    c->all_reduce(t, {.timeout = 30s}).wait();
    ADD_FAILURE() << "the mismatch was not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("all_reduce #1 (f32 x " + std::to_string(tailed) +
                                         ", sum) on rank 0 does not match all_reduce #1 (f32 x 2, sum) on rank 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the mismatch must be found, not the timeout";
}

// Each collective with `blocking` returns done with its result, after the collectives queued
// before it; a failure is thrown by the call (Note [blocking collectives]).
TEST(MpiCommunicator, BlockingCollectives) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  for (int64_t len : {int64_t{3}, int64_t{20000}}) {  // fused, and by the ring
    Tensor t = full({len}, r + 1);
    comm::Work sum = c.all_reduce(t);
    // Sum then Max leaves the sum; the other order would leave n * n.
    EXPECT_TRUE(c.all_reduce(t, {.op = ReduceOp::Max, .blocking = true}).is_completed());
    EXPECT_TRUE(sum.is_completed());
    EXPECT_EQ(t.to_vector<float>()[len - 1], n * (n + 1) / 2);
  }
  Tensor b = full({2}, r);
  EXPECT_TRUE(c.broadcast(b, {.root = n - 1, .blocking = true}).is_completed());
  EXPECT_EQ(b.to_vector<float>()[1], n - 1);
  Tensor in = full({1}, r), out = zeros({n});
  EXPECT_TRUE(c.all_gather(out, in, {.blocking = true}).is_completed());
  EXPECT_EQ(out.to_vector<float>()[n - 1], n - 1);
  Tensor rs_in = full({n}, r + 1), rs_out = zeros({1});
  EXPECT_TRUE(c.reduce_scatter(rs_out, rs_in, {.blocking = true}).is_completed());
  EXPECT_EQ(rs_out.to_vector<float>()[0], n * (n + 1) / 2);
  EXPECT_TRUE(c.barrier({.blocking = true}).is_completed());
  auto sub = c.split(0, r);
  Tensor bad = zeros({r == 0 ? 3 : 5});
  EXPECT_KIRZL_ERROR(sub->all_reduce(bad, {.blocking = true}), ErrorCode::InvalidArgument,
                     "all_reduce #1 (f32 x 3, sum) on rank 0 does not match all_reduce #1 (f32 x 5, sum) on rank 1");
}

TEST(MpiCommunicator, TimeoutFailsEveryRankNamingTheMissingOne) {
  auto c = world().communicator()->split(0, world().rank());
  const std::string report = ::testing::TempDir() + "kirzl_mpi_report_" + std::to_string(c->rank()) + ".txt";
  std::remove(report.c_str());
  kirzl::testing::ScopedEnv report_env("KIRZL_REPORT", report);
  FileSignals timed_out("timeout_names");
  Tensor warm = ones({2});
  c->all_reduce(warm).wait();  // #1
  if (c->rank() == 1) {
    // Skips all_reduce #2; when it comes back (once the others timed out) the group is known to
    // be broken.
    for (int r = 0; r < c->size(); ++r) {
      if (r != 1) {
        EXPECT_TRUE(timed_out.wait_for(r)) << "rank " << r << " did not time out";
      }
    }
    EXPECT_KIRZL_ERROR(c->barrier().wait(), ErrorCode::Timeout, "all_reduce #2", "timed out");
  } else {
    Tensor t = ones({10});
    auto t0 = std::chrono::steady_clock::now();
    try {
      c->all_reduce(t, {.timeout = 300ms, .tag = "grads of fc"}).wait();
      ADD_FAILURE() << "no timeout";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Timeout);
      const std::string m = e.what();
      for (const char* w : {"all_reduce #2 (f32 x 10, sum)", "40 B", "grads of fc", "Not arrived: rank 1",
                            "rank 1 last started all_reduce #1"})
        EXPECT_NE(m.find(w), std::string::npos) << "lacks '" << w << "': " << m;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(s, 0.29);
    EXPECT_LT(s, 20.0) << "the 300 ms timeout, not the default";
    timed_out.signal();
  }
  EXPECT_KIRZL_ERROR(c->barrier(), ErrorCode::Timeout, "unusable");
  if (c->rank() == 0) {  // the lowest rank that arrived writes the report
    std::ifstream f(report);
    std::stringstream text;
    text << f.rdbuf();
    EXPECT_NE(text.str().find("Not arrived: rank 1"), std::string::npos) << text.str();
    EXPECT_NE(text.str().find("rank 0: is in all_reduce #2"), std::string::npos) << text.str();
  }
  // The world communicator is unaffected.
  world().communicator()->barrier().wait();
}

// A rank whose communicator goes away (say, after an exception) makes the others' next
// collective fail at once, long before the timeout.
TEST(MpiCommunicator, ARankThatLeavesFailsTheOthersAtOnce) {
  auto c = world().communicator()->split(0, world().rank());
  Tensor warm = ones({2});
  c->all_reduce(warm).wait();  // #1
  if (c->rank() == 1) {
    c.reset();  // rank 1 leaves after #1
  } else {
    Tensor t = ones({10});
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_KIRZL_ERROR(c->all_reduce(t, {.timeout = 30s}).wait(), ErrorCode::Timeout, "all_reduce #2", "rank 1 has left",
                       "last collective was #1");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(s, 5.0) << "the departure must be noticed, not the 30 s timeout";
  }
  world().communicator()->barrier().wait();
}

int main(int argc, char** argv) {
  setenv("KIRZL_MPI_MAX_COUNT", "100000", 0);
  return kirzl::testing::run_mpi_tests(argc, argv);  // MPI is finalised at exit, after the last communicator is gone
}
