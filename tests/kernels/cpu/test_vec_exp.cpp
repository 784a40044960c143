#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/vec_exp.h"

using kirzl::kernels::cpu::lane_max;
using kirzl::kernels::cpu::lane_sum;
using kirzl::kernels::cpu::vec_exp;

TEST(VecExp, RelativeErrorOverTheFloatRange) {
  double worst = 0;
  for (float x = -86.0f; x < 88.7f; x += 0.00097f) {
    const double e = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(vec_exp(x) - e) / e);
  }
  EXPECT_LT(worst, 2.5e-7);  // ~4 ulp
  EXPECT_EQ(vec_exp(0.0f), 1.0f);
}

// One function, the same bits wherever it is compiled: in a loop the compiler vectorises and in a
// call it cannot inline (through a volatile function pointer). Left to contract its multiply-adds
// itself, the compiler may fuse them in one place and not in the other (Note [explicit fma]).
TEST(VecExp, SameBitsInAVectorisedLoopAndInOneCall) {
  std::vector<float> x, looped;
  for (float v = -90.0f; v < 90.0f; v += 0.0037f) x.push_back(v);
  looped.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) looped[i] = vec_exp(x[i]);
  float (*volatile alone)(float) = [](float v) { return vec_exp(v); };
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(looped[i]), std::bit_cast<uint32_t>(alone(x[i]))) << "x = " << x[i];
}

TEST(VecExp, SpecialValues) {
  EXPECT_EQ(vec_exp(-INFINITY), 0.0f);  // masked logits contribute exactly nothing
  EXPECT_EQ(vec_exp(-200.0f), 0.0f);
  EXPECT_EQ(vec_exp(INFINITY), INFINITY);
  EXPECT_EQ(vec_exp(100.0f), INFINITY);
  EXPECT_TRUE(std::isnan(vec_exp(NAN)));
}

TEST(LaneReduce, SumAndMax) {
  for (int n : {0, 1, 7, 8, 9, 31, 100}) {
    std::vector<double> v(n);
    double s = 0, m = -INFINITY;
    for (int i = 0; i < n; ++i) {
      v[i] = std::sin(i * 1.3) * 10;
      s += v[i];
      m = std::max(m, v[i]);
    }
    EXPECT_NEAR(lane_sum(v.data(), n), s, 1e-12) << n;
    EXPECT_EQ(lane_max(v.data(), n), m) << n;
    std::vector<float> f(v.begin(), v.end());
    EXPECT_EQ(lane_max(f.data(), n), static_cast<float>(m)) << n;
  }
}
