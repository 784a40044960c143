// The reduction kernels of reduce_ops.h: reduce_sources over 1-4 sources for every dtype and op,
// with the output in a buffer of its own and in the first source (the two places its contract
// allows), against the plain reduction; and Max/Min with NaN keep the sources' order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "comm/reduce_ops.h"
#include "comm/transport_cases.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using namespace kirzl::testing::transport_cases;

namespace {

// Where reduce_sources writes: a buffer of its own, or the first source.
enum class Out { Own, First };

std::vector<std::byte> reduce(int nsrc, int64_t count, DType dtype, ReduceOp op, Out out) {
  std::vector<std::vector<std::byte>> in(static_cast<size_t>(nsrc));
  std::vector<const void*> srcs;
  for (int r = 0; r < nsrc; ++r) {
    in[static_cast<size_t>(r)] = contribution(r, count, dtype, op);
    srcs.push_back(in[static_cast<size_t>(r)].data());
  }
  std::vector<std::byte> own(static_cast<size_t>(count) * dtype_size(dtype));
  std::byte* dst = out == Out::Own ? own.data() : in[0].data();
  reduce_sources(dst, srcs.data(), nsrc, count, dtype, op);
  return out == Out::Own ? own : in[0];
}

}  // namespace

TEST(ReduceOps, ReduceSourcesMatchesThePlainReductionWhereverItWrites) {
  for (int nsrc = 1; nsrc <= 4; ++nsrc)
    for (DType dtype : kDTypes)
      for (ReduceOp op : kOps) {
        if (op == ReduceOp::Avg) continue;  // the reference leaves Avg undivided: the next test
        for (Out out : {Out::Own, Out::First}) {
          for (int64_t count : {int64_t{1}, int64_t{7}, int64_t{4099}}) {  // 4099: more than reduce_half's block
            const auto want = reference(nsrc, count, dtype, op);
            ASSERT_EQ(reduce(nsrc, count, dtype, op, out), want)
                << nsrc << " sources, " << count << " x " << dtype_name(dtype) << ", " << comm::to_string(op)
                << ", into " << (out == Out::Own ? "its own buffer" : "source 0");
          }
        }
      }
}

TEST(ReduceOps, AvgDividesTheSumBySourcesWhereverItWrites) {
  for (Out out : {Out::Own, Out::First}) {
    std::vector<float> a = {1, 2, 3}, b = {3, 6, 10}, own(3);
    const void* srcs[2] = {a.data(), b.data()};
    float* dst = out == Out::Own ? own.data() : a.data();
    reduce_sources(dst, srcs, 2, 3, DType::f32, ReduceOp::Avg);
    EXPECT_EQ(std::vector<float>(dst, dst + 3), (std::vector<float>{2, 4, 6.5f}));
  }
}

// max(NaN, 1) is NaN and max(1, NaN) is 1 (a < b is false either way): the result depends on the
// order of the sources, which must be kept (the ranks' order, so that every rank gets the same bits).
TEST(ReduceOps, MaxAndMinWithNaNKeepTheSourcesOrder) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min})
    for (Out out : {Out::Own, Out::First}) {
      std::vector<float> a = {nan, 1.0f}, b = {1.0f, nan}, own(2);
      const void* srcs[2] = {a.data(), b.data()};
      float* dst = out == Out::Own ? own.data() : a.data();
      reduce_sources(dst, srcs, 2, 2, DType::f32, op);
      EXPECT_TRUE(std::isnan(dst[0])) << comm::to_string(op);
      EXPECT_EQ(dst[1], 1.0f) << comm::to_string(op);
    }
}
