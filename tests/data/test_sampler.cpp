#include "kirzl/data/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;

TEST(SequentialSampler, VisitsEveryIndexInOrder) {
  SequentialSampler s(5);
  EXPECT_EQ(s.indices(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(s.size(), 5);
}

TEST(RandomSampler, IsAPermutationThatDependsOnSeedAndEpoch) {
  RandomSampler a(100, 3), b(100, 3), c(100, 4);
  auto ia = a.indices();
  EXPECT_EQ(ia, b.indices());
  EXPECT_NE(ia, c.indices());
  std::vector<int64_t> sorted = ia;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[i], i);
  a.set_epoch(1);
  EXPECT_NE(a.indices(), ia);
  a.set_epoch(0);
  EXPECT_EQ(a.indices(), ia);
}

// Ranks together cover every index once (plus padding), each with the same count.
void expect_partition(int64_t n, int world, bool shuffle, bool drop_last) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " world=" << world << " shuffle=" << shuffle << " drop_last=" << drop_last);
  std::map<int64_t, int> seen;
  const int64_t per_rank = drop_last ? n / world : (n + world - 1) / world;
  for (int r = 0; r < world; ++r) {
    DistributedSampler s(n, r, world, {.shuffle = shuffle, .seed = 11, .drop_last = drop_last});
    s.set_epoch(2);
    auto idx = s.indices();
    ASSERT_EQ(static_cast<int64_t>(idx.size()), per_rank);
    EXPECT_EQ(s.size(), per_rank);
    for (int64_t i : idx) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  if (drop_last) {
    EXPECT_EQ(static_cast<int64_t>(seen.size()), per_rank * world);  // distinct, the tail dropped
    for (auto& [i, count] : seen) EXPECT_EQ(count, 1);
  } else if (n > 0) {
    EXPECT_EQ(static_cast<int64_t>(seen.size()), n);  // every example at least once
    int64_t total = 0;
    for (auto& [i, count] : seen) total += count;
    EXPECT_EQ(total, per_rank * world);
  }
}

TEST(DistributedSampler, EveryRankGetsTheSameCountAndRanksCoverTheData) {
  for (int64_t n : {0, 1, 3, 10, 11, 101})
    for (int world : {1, 2, 3, 4})
      for (bool shuffle : {false, true})
        for (bool drop_last : {false, true}) expect_partition(n, world, shuffle, drop_last);
}

TEST(DistributedSampler, PadsByWrappingAroundInOrder) {
  // 5 examples over 2 ranks without shuffling: [0 1 2 3 4 0] -> rank 0: 0 2 4, rank 1: 1 3 0.
  EXPECT_EQ(DistributedSampler(5, 0, 2, {.shuffle = false}).indices(), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(DistributedSampler(5, 1, 2, {.shuffle = false}).indices(), (std::vector<int64_t>{1, 3, 0}));
  EXPECT_EQ(DistributedSampler(5, 1, 2, {.shuffle = false, .drop_last = true}).indices(), (std::vector<int64_t>{1, 3}));
}

TEST(DistributedSampler, OneRankEqualsTheSharedPermutation) {
  // World size 1 sees the permutation that the ranks of a larger world split between them.
  DistributedSampler one(50, 0, 1, {.seed = 5});
  one.set_epoch(3);
  auto all = one.indices();
  for (int r = 0; r < 2; ++r) {
    DistributedSampler s(50, r, 2, {.seed = 5});
    s.set_epoch(3);
    auto mine = s.indices();
    for (size_t k = 0; k < mine.size(); ++k) EXPECT_EQ(mine[k], all[2 * k + r]);
  }
}

TEST(DistributedSampler, EpochsReshuffle) {
  DistributedSampler s(64, 0, 2, {.seed = 1});
  auto e0 = s.indices();
  s.set_epoch(1);
  EXPECT_NE(s.indices(), e0);
  EXPECT_EQ(s.epoch(), 1);
}

TEST(DistributedSampler, AcceptsAnythingWithRankAndSize) {
  struct FakeGroup {
    int rank() const { return 1; }
    int size() const { return 4; }
  };
  DistributedSampler s(10, FakeGroup{}, {.shuffle = false});
  EXPECT_EQ(s.rank(), 1);
  EXPECT_EQ(s.world_size(), 4);
  EXPECT_EQ(s.indices(), (std::vector<int64_t>{1, 5, 9}));
}

TEST(DistributedSampler, RejectsBadRanks) {
  EXPECT_KIRZL_ERROR(DistributedSampler(10, 2, 2), ErrorCode::InvalidArgument, "rank 2", "0..1");
  EXPECT_KIRZL_ERROR(DistributedSampler(10, 0, 0), ErrorCode::InvalidArgument, "world_size");
  EXPECT_KIRZL_ERROR(DistributedSampler(-1, 0, 1), ErrorCode::InvalidArgument, "dataset size");
}
