// Note [shard layout]: the ranks' pieces of a bucket cover each member parameter's elements
// exactly once, in bucket order, and each rank's chunk is the same size (padded at the end).
#include <gtest/gtest.h>

#include <numeric>

#include "comm/shard_layout.h"
#include "kirzl/core/error.hpp"

using kirzl::ddp_detail::BucketShard;
using kirzl::ddp_detail::shard_bucket;

namespace {

// For every (members, world): the pieces of all ranks tile [0, numel) without gap or overlap, each
// piece lies inside its own parameter and its rank's chunk, and the bucket offsets agree with the
// parameter offsets.
void expect_tiles(const std::vector<size_t>& members, const std::vector<int64_t>& numels, int world) {
  int64_t numel = 0;
  for (size_t i : members) numel += numels[i];
  std::vector<int> owner(static_cast<size_t>(numel), -1);
  std::vector<int64_t> start(numels.size(), -1);  // each member's first element in the bucket
  int64_t at = 0;
  for (size_t i : members) {
    start[i] = at;
    at += numels[i];
  }
  for (int r = 0; r < world; ++r) {
    const BucketShard s = shard_bucket(members, numels, r, world);
    SCOPED_TRACE("rank " + std::to_string(r) + " of " + std::to_string(world));
    EXPECT_EQ(s.numel, numel);
    EXPECT_EQ(s.chunk, (numel + world - 1) / world);
    EXPECT_EQ(s.padded, s.chunk * world);
    EXPECT_GE(s.padded, numel);
    EXPECT_EQ(s.begin, std::min<int64_t>(numel, r * s.chunk));
    int64_t covered = 0, prev_end = s.begin;
    for (const auto& p : s.pieces) {
      ASSERT_GE(start[p.param], 0) << "piece of a parameter outside the bucket";
      EXPECT_GT(p.length, 0);
      EXPECT_EQ(p.bucket_offset, start[p.param] + p.param_offset);
      EXPECT_GE(p.param_offset, 0);
      EXPECT_LE(p.param_offset + p.length, numels[p.param]);
      EXPECT_EQ(p.bucket_offset, prev_end) << "pieces are in bucket order, back to back";
      prev_end = p.bucket_offset + p.length;
      for (int64_t k = 0; k < p.length; ++k) {
        int& o = owner[static_cast<size_t>(p.bucket_offset + k)];
        EXPECT_EQ(o, -1) << "element " << p.bucket_offset + k << " owned twice";
        o = r;
      }
      covered += p.length;
    }
    EXPECT_EQ(prev_end, s.end);
    EXPECT_EQ(covered, s.end - s.begin);
  }
  for (int64_t e = 0; e < numel; ++e) EXPECT_NE(owner[static_cast<size_t>(e)], -1) << "element " << e << " unowned";
}

}  // namespace

TEST(ShardLayout, PiecesTileTheBucketForUnevenSizesAndWorlds) {
  const std::vector<int64_t> numels = {192, 16, 112, 7, 21, 3};
  for (int world : {1, 2, 3, 4, 7, 8}) {
    expect_tiles({0, 1, 2, 3, 4, 5}, numels, world);
    expect_tiles({5, 2, 0}, numels, world);  // buckets list parameters in any order (reverse, usually)
    expect_tiles({3}, numels, world);
  }
}

TEST(ShardLayout, AChunkCutsThroughAParameter) {
  // 10 + 6 elements over 2 ranks: chunk 8, so rank 0 owns 8 of the first and rank 1 its last 2
  // and all of the second.
  const BucketShard r0 = shard_bucket({0, 1}, {10, 6}, 0, 2), r1 = shard_bucket({0, 1}, {10, 6}, 1, 2);
  ASSERT_EQ(r0.pieces.size(), 1u);
  EXPECT_EQ(r0.pieces[0].param, 0u);
  EXPECT_EQ(r0.pieces[0].length, 8);
  ASSERT_EQ(r1.pieces.size(), 2u);
  EXPECT_EQ(r1.pieces[0].param, 0u);
  EXPECT_EQ(r1.pieces[0].param_offset, 8);
  EXPECT_EQ(r1.pieces[0].length, 2);
  EXPECT_EQ(r1.pieces[1].param, 1u);
  EXPECT_EQ(r1.pieces[1].bucket_offset, 10);
  EXPECT_EQ(r1.pieces[1].length, 6);
}

TEST(ShardLayout, MoreRanksThanElementsLeavesTheLastRanksEmpty) {
  // 3 elements over 4 ranks: chunk 1, padded 4; rank 3 owns nothing.
  const BucketShard last = shard_bucket({0}, {3}, 3, 4);
  EXPECT_EQ(last.chunk, 1);
  EXPECT_EQ(last.padded, 4);
  EXPECT_EQ(last.begin, last.end);
  EXPECT_TRUE(last.pieces.empty());
  expect_tiles({0}, {3}, 4);
}

TEST(ShardLayout, ARankOutsideTheWorldIsAnError) {
  EXPECT_THROW(shard_bucket({0}, {3}, 2, 2), kirzl::Error);
  EXPECT_THROW(shard_bucket({0}, {3}, -1, 2), kirzl::Error);
  EXPECT_THROW(shard_bucket({0}, {3}, 0, 0), kirzl::Error);
}
