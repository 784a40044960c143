// The CPU's tanh-GELU (Note [cpu tanh-GELU]) against the textbook form evaluated in long double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/gelu_tanh.h"

using kirzl::kernels::cpu::gelu_tanh;
using kirzl::kernels::cpu::gelu_tanh_grad;

namespace {

long double ref_u(long double x) { return 0.79788456080286535588L * (x + 0.044715L * x * x * x); }
// 0.5 x (1 + tanh(u)) rewritten as x / (1 + e^(-2u)): in the left tail 1 + tanh(u) cancels even
// in long double (to nothing once u < -22), the quotient does not.
long double ref_gelu(long double x) { return x / (1.0L + std::exp(-2.0L * ref_u(x))); }
long double ref_grad(long double x) {
  const long double t = std::tanh(ref_u(x));
  const long double du = 0.79788456080286535588L * (1.0L + 3.0L * 0.044715L * x * x);
  return 0.5L * (1.0L + t) + 0.5L * x * (1.0L - t * t) * du;
}

// Error in units of the float spacing at the reference value (its ulp), over a dense grid, over
// `allowed(x)` ulp: at most 1 everywhere means within bounds.
template <typename F, typename R, typename B>
double worst_ulps(F f, R ref, B allowed, float lo, float hi) {
  double worst = 0;
  for (float x = lo; x < hi; x += 0.000731f) {
    const long double r = ref(static_cast<long double>(x));
    if (r == 0 || std::fabs(r) < 1e-30L) continue;  // below the normal range: nothing to compare
    const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(r)) - 23);
    worst = std::max(worst, static_cast<double>(std::fabs(static_cast<long double>(f(x)) - r)) / ulp / allowed(x));
  }
  return worst;
}

}  // namespace

// A few ulp everywhere, the left tail included, where 0.5 x (1 + tanh(u)) in float cancels to
// nothing (its relative error there reaches 100 %).
//
// The float input bounds what any float evaluation can do: u(x) carries a few ulp of rounding,
// and e^(-2u) multiplies that by 2 |u|; vec_exp adds up to 4 ulp. Measured worst (2026-12-07):
// 5.2 (1 + |u|) ulp over the range and 6.1 ulp for x >= -2, with and without FMA contraction
// (-O3 -march=native, -O1 with the sanitizers, -O2); the bounds leave half as much again.
TEST(GeluTanhCpu, FloatWithinAFewUlpOfTheExactValue) {
  auto gelu = [](float x) { return gelu_tanh(x); };
  auto allowed = [](float x) { return 8.0 * (1.0 + std::fabs(static_cast<double>(ref_u(x)))); };
  EXPECT_LE(worst_ulps(gelu, ref_gelu, allowed, -12.0f, 12.0f), 1.0);
  EXPECT_LE(worst_ulps(gelu, ref_gelu, [](float) { return 10.0; }, -2.0f, 12.0f), 1.0) << "where u is small";
  // The derivative is a difference of terms near x = -0.75 ... -2, where it crosses zero: there
  // its error is bounded by the terms' size, so it is measured against 1 (an absolute error).
  double worst = 0;
  for (float x = -12.0f; x < 12.0f; x += 0.000731f)
    worst = std::max(worst, static_cast<double>(std::fabs(gelu_tanh_grad(x) - ref_grad(x))));
  EXPECT_LT(worst, 1e-6);
}

TEST(GeluTanhCpu, DoubleMatchesToDoublePrecision) {
  for (double x = -30; x < 30; x += 0.0137) {
    EXPECT_NEAR(gelu_tanh(x), static_cast<double>(ref_gelu(x)), 1e-14 * std::max(1.0, std::fabs(x))) << x;
    EXPECT_NEAR(gelu_tanh_grad(x), static_cast<double>(ref_grad(x)), 1e-13) << x;
  }
}

TEST(GeluTanhCpu, LimitsAndSpecialValues) {
  EXPECT_EQ(gelu_tanh(0.0f), 0.0f);
  EXPECT_EQ(gelu_tanh(100.0f), 100.0f);
  EXPECT_EQ(gelu_tanh(-100.0f), 0.0f);
  EXPECT_TRUE(std::signbit(gelu_tanh(-100.0f))) << "-0, as x * 0 for negative x";
  EXPECT_EQ(gelu_tanh_grad(-100.0f), 0.0f);
  EXPECT_EQ(gelu_tanh_grad(100.0f), 1.0f);
  EXPECT_FLOAT_EQ(gelu_tanh_grad(0.0f), 0.5f);
  EXPECT_EQ(gelu_tanh(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(gelu_tanh(NAN)));
  EXPECT_TRUE(std::isnan(gelu_tanh_grad(NAN)));
}
