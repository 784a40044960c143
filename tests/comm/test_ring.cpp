// The ring algorithm (ring.h) over the in-process transport, deterministically, without MPI: at
// 1..8 ranks, odd element counts (0, 1, n - 1, n + 1, primes, counts not divisible by n), every
// dtype and reduce op, whole and in small pieces, against a plain reduction; bitwise-identical
// results on every rank; and a transport that fails or drops a message mid-ring: every rank gets
// an error, and nothing hangs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/in_process_transport.h"
#include "comm/reduce_ops.h"
#include "comm/ring.h"
#include "comm/transport_cases.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using comm::ReduceOp;
using namespace std::chrono_literals;

using namespace kirzl::testing::transport_cases;

namespace {

std::vector<int64_t> counts_for(int n) {
  std::vector<int64_t> c = {0, 1, n - 1, n, n + 1, 2 * n + 1, 7, 13, 31, 97};
  std::erase_if(c, [](int64_t x) { return x < 0; });
  return c;
}


std::string case_name(int n, int64_t count, DType dtype, ReduceOp op, int64_t piece) {
  return std::to_string(n) + " ranks, " + std::to_string(count) + " x " + dtype_name(dtype) + ", " + comm::to_string(op) +
         ", pieces of " + std::to_string(piece) + " B";
}

}  // namespace

TEST(Ring, SegmentsCoverTheDataAndDifferByAtMostOne) {
  for (int n = 1; n <= 8; ++n)
    for (int64_t count : counts_for(n)) {
      EXPECT_EQ(ring_segment_begin(count, n, 0), 0);
      EXPECT_EQ(ring_segment_begin(count, n, n), count);
      for (int k = 0; k < n; ++k) {
        const int64_t len = ring_segment_begin(count, n, k + 1) - ring_segment_begin(count, n, k);
        EXPECT_TRUE(len == count / n || len == count / n + 1) << count << " over " << n << ", segment " << k;
      }
    }
  EXPECT_EQ(ring_reduced_segment(0, 4), 1);
  EXPECT_EQ(ring_reduced_segment(3, 4), 0);
  EXPECT_EQ(ring_reduced_segment(0, 1), 0);
}

TEST(Ring, AllReduceMatchesAPlainReductionForEveryDtypeOpAndSize) {
  for (int n = 1; n <= 8; ++n)
    for (int64_t count : counts_for(n))
      for (DType dtype : kDTypes)
        for (ReduceOp op : kOps)
          for (int64_t piece : {int64_t{512} << 10, int64_t{5}}) {  // whole segments; pieces of 1-2 elements
            const auto want = reference(n, count, dtype, op);
            std::vector<std::vector<std::byte>> got(n);
            auto errors = run_ranks(n, [&](int r, Transport& t) {
              got[r] = contribution(r, count, dtype, op);
              ring_all_reduce(t, got[r].data(), count, dtype, op, {.piece_bytes = piece});
            });
            for (int r = 0; r < n; ++r) {
              ASSERT_FALSE(errors[r]) << case_name(n, count, dtype, op, piece) << ": " << errors[r]->what();
              ASSERT_EQ(got[r], want) << case_name(n, count, dtype, op, piece) << ", rank " << r;
            }
          }
}

TEST(Ring, ReduceScatterLeavesEachRankItsReducedSegment) {
  for (int n = 1; n <= 8; ++n)
    for (int64_t count : counts_for(n))
      for (DType dtype : {DType::f32, DType::i64, DType::u8, DType::bf16})
        for (ReduceOp op : kOps) {
          const auto want = reference(n, count, dtype, op);
          const size_t esize = dtype_size(dtype);
          std::vector<std::vector<std::byte>> got(n);
          auto errors = run_ranks(n, [&](int r, Transport& t) {
            got[r] = contribution(r, count, dtype, op);
            ring_reduce_scatter(t, got[r].data(), count, dtype, op, {.piece_bytes = 3});
          });
          for (int r = 0; r < n; ++r) {
            ASSERT_FALSE(errors[r]) << errors[r]->what();
            const int k = ring_reduced_segment(r, n);
            const size_t lo = static_cast<size_t>(ring_segment_begin(count, n, k)) * esize,
                         hi = static_cast<size_t>(ring_segment_begin(count, n, k + 1)) * esize;
            ASSERT_TRUE(std::equal(got[r].begin() + lo, got[r].begin() + hi, want.begin() + lo))
                << case_name(n, count, dtype, op, 3) << ", rank " << r << ", segment " << k;
          }
        }
}

TEST(Ring, AllGatherSpreadsEachRanksSegment) {
  for (int n = 1; n <= 8; ++n)
    for (int64_t count : counts_for(n)) {
      // Rank r knows only its segment (the rest is poison); afterwards every rank has all of them.
      std::vector<double> full(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) full[static_cast<size_t>(i)] = static_cast<double>(i * 3 + 1);
      const auto want = encode(full, DType::f64);
      std::vector<std::vector<std::byte>> got(n);
      auto errors = run_ranks(n, [&](int r, Transport& t) {
        std::vector<double> mine(static_cast<size_t>(count), -1.0);
        const int k = ring_reduced_segment(r, n);
        for (int64_t i = ring_segment_begin(count, n, k); i < ring_segment_begin(count, n, k + 1); ++i)
          mine[static_cast<size_t>(i)] = full[static_cast<size_t>(i)];
        got[r] = encode(mine, DType::f64);
        ring_all_gather(t, got[r].data(), count, DType::f64, {.piece_bytes = 16});
      });
      for (int r = 0; r < n; ++r) {
        ASSERT_FALSE(errors[r]) << errors[r]->what();
        ASSERT_EQ(got[r], want) << n << " ranks, " << count << " elements, rank " << r;
      }
    }
}

// Max and Min are not commutative where NaN is involved (a < b is false either way): each segment
// is reduced once, by one rank, and copied, so every rank still gets the same bits.
// Note [ring scratch alignment]: the caller's scratch is allocated aligned like tensor storage,
// reused while it is large enough, and grown (again aligned) when it is not.
TEST(Ring, ScratchIsAlignedLikeTensorStorageAndReused) {
  const int n = 2;
  std::vector<RingScratch> scratch(n);
  std::vector<const std::byte*> first(n);
  for (int64_t count : {int64_t{1001}, int64_t{999}, int64_t{40001}}) {
    const auto want = reference(n, count, DType::f32, ReduceOp::Sum);
    std::vector<std::vector<std::byte>> got(n);
    auto errors = run_ranks(n, [&](int r, Transport& t) {
      got[r] = contribution(r, count, DType::f32, ReduceOp::Sum);
      ring_all_reduce(t, got[r].data(), count, DType::f32, ReduceOp::Sum, {.scratch = &scratch[r]});
    });
    for (int r = 0; r < n; ++r) {
      ASSERT_FALSE(errors[r]) << count << " elements, rank " << r << ": " << errors[r]->what();
      EXPECT_EQ(got[r], want) << count << " elements, rank " << r;
      ASSERT_NE(scratch[r].data, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(scratch[r].data.get()) % kRingScratchAlignment, 0u)
          << count << " elements, rank " << r;
      EXPECT_GE(scratch[r].bytes, (count / n + 1) * 4) << count << " elements, rank " << r;
      if (count == 1001) first[r] = scratch[r].data.get();
      if (count == 999) EXPECT_EQ(scratch[r].data.get(), first[r]) << "a smaller all-reduce reallocated rank " << r << "'s scratch";
    }
  }
}

TEST(Ring, EveryRankGetsTheSameBitsForNaNUnderMaxAndMin) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int n : {2, 3})
    for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min})
      for (int64_t piece : {int64_t{512} << 10, int64_t{8}}) {
        const int64_t count = 40;
        std::vector<std::vector<float>> got(n);
        auto errors = run_ranks(n, [&](int r, Transport& t) {
          got[r].assign(count, static_cast<float>(r + 1));
          for (int64_t i = r; i < count; i += n + 1) got[r][static_cast<size_t>(i)] = nan;  // NaN on a different rank per element
          ring_all_reduce(t, got[r].data(), count, DType::f32, op, {.piece_bytes = piece});
        });
        for (int r = 0; r < n; ++r) {
          ASSERT_FALSE(errors[r]) << errors[r]->what();
          ASSERT_EQ(std::memcmp(got[r].data(), got[0].data(), count * sizeof(float)), 0)
              << n << " ranks, " << comm::to_string(op) << ", pieces of " << piece << " B: rank " << r
              << " differs from rank 0";
        }
      }
}

TEST(Ring, EveryRankGetsTheSameBitsForInexactFloats) {
  // Values whose sums round: the ranks must still agree bit for bit, close to the exact sum.
  for (int n : {3, 5, 8})
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      const int64_t count = 1009;
      std::vector<std::vector<std::byte>> got(n);
      std::vector<double> exact(count, 0.0);
      std::vector<std::vector<double>> inputs(n, std::vector<double>(count));
      for (int r = 0; r < n; ++r)
        for (int64_t i = 0; i < count; ++i) {
          inputs[r][i] = std::sin(0.1 * static_cast<double>(r * count + i));
          exact[i] += inputs[r][i];
        }
      auto errors = run_ranks(n, [&](int r, Transport& t) {
        got[r] = encode(inputs[r], dtype);
        ring_all_reduce(t, got[r].data(), count, dtype, ReduceOp::Sum, {.piece_bytes = 64});
      });
      for (int r = 0; r < n; ++r) {
        ASSERT_FALSE(errors[r]) << errors[r]->what();
        ASSERT_EQ(got[r], got[0]) << n << " ranks, " << dtype_name(dtype) << ", rank " << r;
      }
      std::vector<float> back(count);
      if (dtype == DType::f32) std::memcpy(back.data(), got[0].data(), count * sizeof(float));
      else widen_to_f32(got[0].data(), dtype, back.data(), count);
      const double tol = dtype == DType::f32 ? 1e-5 : 0.1;
      for (int64_t i = 0; i < count; ++i) ASSERT_NEAR(back[i], exact[i], tol * n) << dtype_name(dtype) << " element " << i;
    }
}

TEST(Ring, ASendThatFailsMidRingFailsEveryRank) {
  for (int n = 2; n <= 8; ++n) {
    const int bad_rank = n / 2, bad_send = (n - 1) / 2;  // a step in the middle of the reduce-scatter
    // A long timeout: the failure must travel by the failing rank leaving, not by waiting it out.
    auto errors = run_ranks(
        n,
        [&](int r, Transport& t) {
          FaultyTransport faulty(t, bad_rank, bad_send, false);
          auto data = contribution(r, 1000, DType::f32, ReduceOp::Sum);
          ring_all_reduce(faulty, data.data(), 1000, DType::f32, ReduceOp::Sum);
        },
        {.timeout = 60s});
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(errors[r]) << n << " ranks: rank " << r << " finished although rank " << bad_rank << " failed";
      if (r == bad_rank) {
        EXPECT_EQ(errors[r]->code(), ErrorCode::Mpi);
        EXPECT_NE(errors[r]->message().find("injected"), std::string::npos) << errors[r]->what();
      } else {
        EXPECT_EQ(errors[r]->code(), ErrorCode::InvalidArgument) << errors[r]->what();
        EXPECT_NE(errors[r]->message().find("has left the group"), std::string::npos) << errors[r]->what();
      }
    }
  }
}

TEST(Ring, ALostMessageTimesOutAndFailsEveryRank) {
  for (int n = 2; n <= 8; ++n) {
    const int bad_rank = (n - 1) / 2, bad_send = (n - 2) / 2;  // in the reduce-scatter: every rank needs it
    auto errors = run_ranks(
        n,
        [&](int r, Transport& t) {
          FaultyTransport faulty(t, bad_rank, bad_send, true);
          auto data = contribution(r, 1000, DType::i32, ReduceOp::Max);
          ring_all_reduce(faulty, data.data(), 1000, DType::i32, ReduceOp::Max);
        },
        {.timeout = 200ms});
    // The rank waiting for the lost message times out — or, when another stalled rank's wait ends
    // first, learns that that rank has left. Either way every rank fails, at least one by timeout.
    int timeouts = 0;
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(errors[r]) << n << " ranks: rank " << r << " finished despite the lost message";
      if (errors[r]->code() == ErrorCode::Timeout) {
        ++timeouts;
        EXPECT_NE(errors[r]->message().find("which did not send them"), std::string::npos) << errors[r]->what();
      } else {
        EXPECT_NE(errors[r]->message().find("has left the group"), std::string::npos) << errors[r]->what();
      }
    }
    EXPECT_GE(timeouts, 1) << n << " ranks";
  }
}
