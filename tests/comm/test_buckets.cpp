#include <gtest/gtest.h>

#include "comm/buckets.h"

using kirzl::DType;
using kirzl::ddp_detail::assign_buckets;
using kirzl::ddp_detail::ParamSlot;

namespace {
std::vector<ParamSlot> slots(std::vector<size_t> bytes, DType dt = DType::f32) {
  std::vector<ParamSlot> v;
  for (size_t b : bytes) v.push_back({b, dt, {}});
  return v;
}
using Buckets = std::vector<std::vector<size_t>>;
}  // namespace

TEST(Buckets, ReverseOrderWithSmallFirstBucket) {
  // Registration order 0..4; the last parameters come first.
  auto b = assign_buckets(slots({100, 100, 100, 100, 100}), /*cap=*/250, /*first=*/150);
  EXPECT_EQ(b, (Buckets{{4}, {3, 2}, {1, 0}}));
}

TEST(Buckets, LargeParameterGetsItsOwnBucket) {
  auto b = assign_buckets(slots({10, 1000, 10, 10}), 100, 100);
  EXPECT_EQ(b, (Buckets{{3, 2}, {1}, {0}}));
}

TEST(Buckets, DtypeChangeClosesABucket) {
  auto s = slots({10, 10, 10, 10});
  s[1].dtype = DType::bf16;
  auto b = assign_buckets(s, 1000, 1000);
  EXPECT_EQ(b, (Buckets{{3, 2}, {1}, {0}}));
}

TEST(Buckets, EveryParameterExactlyOnce) {
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 37; ++i) sizes.push_back((i * 7919) % 300 + 1);
  auto b = assign_buckets(slots(sizes), 500, 64);
  std::vector<int> seen(sizes.size(), 0);
  for (auto& bucket : b)
    for (size_t k : bucket) ++seen[k];
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_TRUE(assign_buckets({}, 10, 10).empty());
}
