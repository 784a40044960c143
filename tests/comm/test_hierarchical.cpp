// The hierarchical all-reduce (hierarchical.h) over the in-process transport, deterministically,
// without MPI: node maps of 2-4 nodes of 2-3 ranks (contiguous and interleaved), odd counts (0, 1,
// 7, counts not divisible by the node size), every dtype and reduce op, whole and in small pieces,
// against a plain reduction; bitwise-identical results on every rank for inexact floats; which
// node maps it refuses and why; and a rank that leaves mid-way fails every rank without a hang.
// The pipeline (Note [hierarchical pipeline]): several chunks (counts not divisible by them), one
// chunk, chunks larger than the message, give the same results; its phases really overlap; and a
// send that fails, or a message lost, in the middle of the pipeline fails every rank, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "comm/hierarchical.h"
#include "comm/in_process_transport.h"
#include "comm/reduce_ops.h"
#include "comm/transport_cases.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using comm::ReduceOp;
using namespace std::chrono_literals;

using namespace kirzl::testing::transport_cases;

namespace {

// The node maps under test: contiguous 2x2, 2x3, 3x2, 4x2, and interleaved nodes (rank r on node r % 2).
std::vector<NodeMap> node_maps() {
  return {{{0, 0, 1, 1}}, {{0, 0, 0, 1, 1, 1}}, {{0, 0, 1, 1, 2, 2}}, {{0, 0, 1, 1, 2, 2, 3, 3}}, {{0, 1, 0, 1, 0, 1}}};
}

// Pieces and chunks (bytes): one chunk (0: no pipeline; 4 MiB: larger than any message here), and
// several chunks of a few elements, whole or in pieces smaller than an element.
const std::pair<int64_t, int64_t> kPiecesAndChunks[] = {
    {int64_t{512} << 10, 0}, {int64_t{512} << 10, int64_t{4} << 20}, {int64_t{512} << 10, 24}, {5, 40}, {5, 1}};

std::string map_name(const NodeMap& m) {
  std::string s = "nodes [";
  for (int x : m.node_of) s += std::to_string(x);
  return s + "]";
}

}  // namespace

TEST(Hierarchical, NodeMapFromKeysNumbersNodesByFirstRank) {
  const NodeMap m = NodeMap::from_keys({40, 40, 7, 7, 40});
  EXPECT_EQ(m.node_of, (std::vector<int>{0, 0, 1, 1, 0}));
  EXPECT_EQ(m.nodes(), 2);
  EXPECT_EQ(m.members(0), (std::vector<int>{0, 1, 4}));
}

// The pipeline's default chunk (Note [hierarchical pipeline]): 1 MiB on 2 nodes, 256 KiB on more.
TEST(Hierarchical, DefaultChunkDependsOnTheNodeCount) {
  if (std::getenv("KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES")) GTEST_SKIP() << "KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES is set";
  EXPECT_EQ(hierarchical_chunk_bytes(2), int64_t{1} << 20);
  EXPECT_EQ(hierarchical_chunk_bytes(3), int64_t{256} << 10);
  EXPECT_EQ(hierarchical_chunk_bytes(4), int64_t{256} << 10);
  EXPECT_EQ(hierarchical_chunk_bytes(64), int64_t{256} << 10);
}

TEST(Hierarchical, RefusesOneNodeUnevenNodesAndOneRankPerNode) {
  EXPECT_EQ(hierarchical_unusable({{0, 0, 0}}), "the ranks are on one node");
  EXPECT_EQ(hierarchical_unusable({{0, 0, 1, 1, 1}}), "the nodes have different numbers of ranks (2, 3)");
  EXPECT_EQ(hierarchical_unusable({{0, 1, 2}}), "every node has one rank (the flat ring is the same)");
  EXPECT_EQ(hierarchical_unusable({{0, 0, 1, 1}}), std::nullopt);
  std::vector<std::byte> buf(8);
  auto errors = run_ranks(3, [&](int r, Transport& t) {
    std::vector<std::byte> mine(8);
    hierarchical_all_reduce(t, {{0, 0, 1}}, mine.data(), 2, DType::f32, ReduceOp::Sum);
    (void)r;
  });
  for (auto& e : errors) {
    ASSERT_TRUE(e);
    EXPECT_NE(std::string(e->what()).find("different numbers of ranks"), std::string::npos) << e->what();
  }
}

TEST(Hierarchical, MatchesAPlainReductionForEveryDtypeOpAndSize) {
  for (const NodeMap& map : node_maps()) {
    const int n = static_cast<int>(map.node_of.size());
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{n - 1}, int64_t{n + 1}, int64_t{13}, int64_t{97}})
      for (DType dtype : kDTypes)
        for (ReduceOp op : kOps)
          for (auto [piece, chunk] : kPiecesAndChunks) {
            const auto want = reference(n, count, dtype, op);
            std::vector<std::vector<std::byte>> got(n);
            auto errors = run_ranks(n, [&](int r, Transport& t) {
              got[r] = contribution(r, count, dtype, op);
              hierarchical_all_reduce(t, map, got[r].data(), count, dtype, op, {.piece_bytes = piece}, chunk);
            });
            for (int r = 0; r < n; ++r) {
              const std::string what = map_name(map) + ", " + std::to_string(count) + " x " + dtype_name(dtype) + ", " +
                                       comm::to_string(op) + ", pieces of " + std::to_string(piece) + ", chunks of " +
                                       std::to_string(chunk) + ", rank " + std::to_string(r);
              ASSERT_FALSE(errors[r]) << what << ": " << errors[r]->what();
              ASSERT_EQ(got[r], want) << what;
            }
          }
  }
}

TEST(Hierarchical, EveryRankGetsTheSameBitsForInexactFloats) {
  for (const NodeMap& map : node_maps())
    for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      const int n = static_cast<int>(map.node_of.size());
      const int64_t count = 1009;
      std::vector<double> exact(count, 0.0);
      std::vector<std::vector<double>> inputs(n, std::vector<double>(count));
      for (int r = 0; r < n; ++r)
        for (int64_t i = 0; i < count; ++i) {
          inputs[r][i] = std::sin(0.1 * static_cast<double>(r * count + i));
          exact[i] += inputs[r][i];
        }
      for (int64_t chunk : {int64_t{0}, int64_t{200}}) {  // one chunk; 11-41 chunks of uneven sizes
      std::vector<std::vector<std::byte>> got(n);
      auto errors = run_ranks(n, [&](int r, Transport& t) {
        got[r] = encode(inputs[r], dtype);
        hierarchical_all_reduce(t, map, got[r].data(), count, dtype, ReduceOp::Sum, {.piece_bytes = 64}, chunk);
      });
      for (int r = 0; r < n; ++r) {
        ASSERT_FALSE(errors[r]) << errors[r]->what();
        ASSERT_EQ(got[r], got[0]) << map_name(map) << ", " << dtype_name(dtype) << ", chunks of " << chunk << ", rank " << r;
      }
      std::vector<double> back(count);
      if (dtype == DType::f64) {
        std::memcpy(back.data(), got[0].data(), count * sizeof(double));
      } else {
        std::vector<float> f(count);
        if (dtype == DType::f32) std::memcpy(f.data(), got[0].data(), count * sizeof(float));
        else widen_to_f32(got[0].data(), dtype, f.data(), count);
        back.assign(f.begin(), f.end());
      }
      const double tol = dtype == DType::f64 ? 1e-12 : dtype == DType::f32 ? 1e-5 : 0.1;
      for (int64_t i = 0; i < count; ++i) ASSERT_NEAR(back[i], exact[i], tol * n) << dtype_name(dtype) << " element " << i;
      }
    }
}

TEST(Hierarchical, ARankThatLeavesFailsEveryRankWithoutAHang) {
  // Rank 3 (node 1) leaves before it starts: rank 2 fails in the node's reduce-scatter, ranks 0 and
  // 1 in the exchange across nodes (or at their deadline at the latest).
  const NodeMap map{{0, 0, 1, 1}};
  const auto start = std::chrono::steady_clock::now();
  auto errors = run_ranks(4, [&](int r, Transport& t) {
    if (r == 3) throw Error(ErrorCode::InvalidArgument, "rank 3 fails before the all-reduce");
    std::vector<float> v(1000, 1.0f);
    hierarchical_all_reduce(t, map, v.data(), 1000, DType::f32, ReduceOp::Sum, {.piece_bytes = 256});
  }, {.timeout = 5s});
  for (int r = 0; r < 4; ++r) EXPECT_TRUE(errors[r]) << "rank " << r << " should have failed";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "the ranks should fail at once, not at their deadline";
}

namespace {

// Records, per rank, the channel of every message posted (0: reduce-scatter in the node, 1 and 3:
// across the nodes, 2: all-gather in the node).
class RecordingTransport final : public Transport {
 public:
  RecordingTransport(Transport& inner, std::vector<int>& channels) : inner_(inner), channels_(channels) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) override {
    channels_.push_back(channel);
    return inner_.send(peer, data, bytes, channel);
  }
  Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) override {
    return inner_.receive(peer, data, bytes, channel);
  }
  void wait(std::span<const Request> requests) override { inner_.wait(requests); }
  bool test(std::span<const Request> requests) override { return inner_.test(requests); }
  void keep_alive(std::shared_ptr<void> buffer) override { inner_.keep_alive(std::move(buffer)); }

 private:
  Transport& inner_;
  std::vector<int>& channels_;
};

}  // namespace

TEST(Hierarchical, ThePhasesOfDifferentChunksOverlap) {
  // 2 x 2 ranks, 64 chunks, one message per chunk in each phase in the node: the j-th send on
  // channel 0 is chunk j's reduce-scatter, the j-th on channel 2 chunk j's all-gather. Pipelined,
  // chunk k + 1 is reduce-scattered while chunk k is still on its way across the nodes, so before
  // chunk k's all-gather; one after the other, after it.
  const NodeMap map{{0, 0, 1, 1}};
  const int64_t count = 64 * 256;
  for (int64_t chunk : {int64_t{1024}, int64_t{0}}) {
    std::vector<std::vector<int>> channels(4);
    auto errors = run_ranks(4, [&](int r, Transport& t) {
      RecordingTransport rec(t, channels[r]);
      auto data = contribution(r, count, DType::f32, ReduceOp::Sum);
      hierarchical_all_reduce(rec, map, data.data(), count, DType::f32, ReduceOp::Sum, {}, chunk);
      ASSERT_EQ(data, reference(4, count, DType::f32, ReduceOp::Sum)) << "rank " << r;
    });
    for (int r = 0; r < 4; ++r) {
      ASSERT_FALSE(errors[r]) << errors[r]->what();
      std::vector<size_t> at[Transport::kChannels];  // the positions of each channel's sends
      for (size_t i = 0; i < channels[r].size(); ++i) at[channels[r][i]].push_back(i);
      if (chunk == 0) {
        ASSERT_EQ(at[0].size(), 1u);  // one chunk: each phase one message, across the nodes on channel 1
        EXPECT_TRUE(at[3].empty());
        EXPECT_LT(at[0].back(), at[1].front());
        EXPECT_LT(at[1].back(), at[2].front());
        continue;
      }
      ASSERT_EQ(at[0].size(), 64u);
      // Two ring steps across the 2 nodes, the even chunks on channel 1, the odd ones on channel 3.
      ASSERT_EQ(at[1].size(), 64u);
      ASSERT_EQ(at[3].size(), 64u);
      ASSERT_EQ(at[2].size(), 64u);
      for (size_t k = 0; k + 1 < 64; ++k)
        EXPECT_LT(at[0][k + 1], at[2][k]) << "rank " << r << ": chunk " << k + 1
                                          << " was reduce-scattered only after chunk " << k << " was all-gathered";
    }
  }
}

TEST(Hierarchical, ASendThatFailsMidPipelineFailsEveryRank) {
  // 16 chunks of 4-8 ring steps, one message each: the bad rank's 30th send is mid-pipeline.
  for (const NodeMap& map : {NodeMap{{0, 0, 1, 1}}, NodeMap{{0, 0, 0, 1, 1, 1}}, NodeMap{{0, 0, 1, 1, 2, 2, 3, 3}}}) {
    const int n = static_cast<int>(map.node_of.size());
    const int64_t count = 16 * 64;
    const auto start = std::chrono::steady_clock::now();
    auto errors = run_ranks(
        n,
        [&](int r, Transport& t) {
          FaultyTransport faulty(t, n - 1, 30, false);
          auto data = contribution(r, count, DType::f32, ReduceOp::Sum);
          hierarchical_all_reduce(faulty, map, data.data(), count, DType::f32, ReduceOp::Sum, {}, 256);
        },
        {.timeout = 60s});  // the failure must travel by the failing rank leaving, not by a timeout
    for (int r = 0; r < n; ++r) ASSERT_TRUE(errors[r]) << map_name(map) << ": rank " << r << " finished";
    EXPECT_EQ(errors[n - 1]->code(), ErrorCode::Mpi) << errors[n - 1]->what();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s) << map_name(map) << ": the ranks waited for their deadline";
  }
}

TEST(Hierarchical, AMessageLostMidPipelineTimesOutAndFailsEveryRank) {
  const NodeMap map{{0, 0, 1, 1}};
  const int64_t count = 16 * 64;
  const auto start = std::chrono::steady_clock::now();
  auto errors = run_ranks(
      4,
      [&](int r, Transport& t) {
        FaultyTransport faulty(t, 2, 30, true);  // rank 2's 30th and later sends are lost
        auto data = contribution(r, count, DType::f32, ReduceOp::Sum);
        hierarchical_all_reduce(faulty, map, data.data(), count, DType::f32, ReduceOp::Sum, {}, 256);
      },
      {.timeout = 300ms});
  int timeouts = 0;
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(errors[r]) << "rank " << r << " finished despite the lost messages";
    timeouts += errors[r]->code() == ErrorCode::Timeout;
  }
  EXPECT_GE(timeouts, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}
