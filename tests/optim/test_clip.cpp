// Gradient clipping by global norm and by value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/optim/clip.hpp>

#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

/// A leaf parameter of `values`' size with gradient `grad` (same dtype).
Tensor param_with_grad(const std::vector<double>& grad, DType dtype = DType::f64) {
  Tensor p = zeros({static_cast<int64_t>(grad.size())}, {.dtype = dtype, .requires_grad = true});
  p.set_grad(from_vector(grad, p.shape(), {.dtype = dtype}));
  return p;
}

std::vector<double> grad_of(const Tensor& p) { return p.grad().to_vector<double>(); }

TEST(ClipGradNorm, TwoNormScalesAllGradients) {
  Tensor a = param_with_grad({3.0, 4.0}), b = param_with_grad({12.0});
  Tensor no_grad = zeros({2}, {.dtype = DType::f64, .requires_grad = true});
  double total = clip_grad_norm({a, no_grad, b}, 1.0);
  EXPECT_DOUBLE_EQ(total, 13.0);
  double c = 1.0 / (13.0 + 1e-6);
  EXPECT_DOUBLE_EQ(grad_of(a)[0], 3.0 * c);
  EXPECT_DOUBLE_EQ(grad_of(a)[1], 4.0 * c);
  EXPECT_DOUBLE_EQ(grad_of(b)[0], 12.0 * c);
  EXPECT_FALSE(no_grad.grad().defined());
  // The clipped global norm is max_norm (up to the 1e-6 guard).
  EXPECT_NEAR(clip_grad_norm({a, b}, 100.0), 1.0, 1e-6);
}

TEST(ClipGradNorm, BelowMaxNormLeavesGradientsAlone) {
  Tensor a = param_with_grad({3.0, 4.0});
  void* before = a.grad().data_ptr();
  EXPECT_DOUBLE_EQ(clip_grad_norm({a}, 5.5), 5.0);
  EXPECT_EQ(grad_of(a), (std::vector<double>{3.0, 4.0}));
  EXPECT_EQ(a.grad().data_ptr(), before);
}

TEST(ClipGradNorm, InfinityNorm) {
  Tensor a = param_with_grad({3.0, -4.0}), b = param_with_grad({-12.0, 1.0});
  double total = clip_grad_norm({a, b}, 6.0, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(total, 12.0);
  double c = 6.0 / (12.0 + 1e-6);
  EXPECT_DOUBLE_EQ(grad_of(b)[0], -12.0 * c);
  EXPECT_DOUBLE_EQ(grad_of(a)[1], -4.0 * c);
}

TEST(ClipGradNorm, OneNormAndOtherOrders) {
  Tensor a = param_with_grad({3.0, -4.0}), b = param_with_grad({-12.0});
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 100.0, 1.0), 19.0);
  EXPECT_NEAR(clip_grad_norm({a, b}, 100.0, 3.0), std::cbrt(27.0 + 64.0 + 1728.0), 1e-12);
}

TEST(ClipGradNorm, Float32AndBFloat16Gradients) {
  Tensor a = param_with_grad({3.0, 4.0}, DType::f32), b = param_with_grad({12.0}, DType::bf16);
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 6.5), 13.0);
  EXPECT_NEAR(grad_of(a)[0], 1.5, 1e-6);
  EXPECT_NEAR(grad_of(b)[0], 6.0, 0.05);
}

TEST(ClipGradNorm, NonContiguousGradientIsScaledInItsOwnMemory) {
  Tensor p = zeros({3, 2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor base = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  p.set_grad(base.t());
  ASSERT_FALSE(p.grad().is_contiguous());
  double total = clip_grad_norm({p}, 1.0);
  EXPECT_DOUBLE_EQ(total, std::sqrt(91.0));
  double c = 1.0 / (std::sqrt(91.0) + 1e-6);
  auto got = base.to_vector<double>();
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(got[i], (i + 1) * c);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsOrThrows) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Tensor a = param_with_grad({3.0, nan}), b = param_with_grad({12.0});
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0)));
  EXPECT_EQ(grad_of(b)[0], 12.0);
  EXPECT_EQ(grad_of(a)[0], 3.0);
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0, inf)));  // NaN wins over max
  EXPECT_EQ(grad_of(b)[0], 12.0);
  EXPECT_KIRZL_ERROR(clip_grad_norm({a, b}, 1.0, 2.0, true), ErrorCode::InvalidArgument, "clip_grad_norm", "nan");
  EXPECT_EQ(grad_of(b)[0], 12.0);

  Tensor c = param_with_grad({inf, 1.0});
  EXPECT_EQ(clip_grad_norm({c, b}, 1.0), inf);
  EXPECT_EQ(grad_of(c)[1], 1.0);
  EXPECT_EQ(grad_of(b)[0], 12.0);
  EXPECT_KIRZL_ERROR(clip_grad_norm({c}, 1.0, inf, true), ErrorCode::InvalidArgument, "clip_grad_norm", "inf");
}

TEST(ClipGradNorm, LargeGradientMatchesSerialSum) {
  const int64_t n = 200001;
  std::vector<double> g(n);
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    g[i] = std::sin(0.01 * static_cast<double>(i));
    sq += g[i] * g[i];
  }
  Tensor p = param_with_grad(g);
  EXPECT_NEAR(clip_grad_norm({p}, 1.0), std::sqrt(sq), 1e-9);
  EXPECT_NEAR(clip_grad_norm({p}, 10.0), 1.0, 1e-6);
}

TEST(ClipGradNorm, NoGradientsGiveZero) {
  Tensor p = zeros({2}, {.requires_grad = true});
  EXPECT_EQ(clip_grad_norm({p}, 1.0), 0.0);
  EXPECT_EQ(clip_grad_norm({}, 1.0), 0.0);
}

TEST(ClipGradNorm, BadArguments) {
  Tensor a = param_with_grad({1.0});
  EXPECT_KIRZL_ERROR(clip_grad_norm({a}, -1.0), ErrorCode::InvalidArgument, "clip_grad_norm", "max_norm", "-1");
  EXPECT_KIRZL_ERROR(clip_grad_norm({a}, 1.0, 0.0), ErrorCode::InvalidArgument, "clip_grad_norm", "norm_type", "0");
  EXPECT_KIRZL_ERROR(clip_grad_norm({a}, std::nan("")), ErrorCode::InvalidArgument, "max_norm", "nan");
}

TEST(ClipGradValue, ClampsInPlaceAndKeepsNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = param_with_grad({-3.0, 0.5, 2.0, nan});
  void* before = a.grad().data_ptr();
  clip_grad_value({a}, 1.0);
  auto g = grad_of(a);
  EXPECT_EQ(g[0], -1.0);
  EXPECT_EQ(g[1], 0.5);
  EXPECT_EQ(g[2], 1.0);
  EXPECT_TRUE(std::isnan(g[3]));
  EXPECT_EQ(a.grad().data_ptr(), before);
  EXPECT_KIRZL_ERROR(clip_grad_value({a}, -0.5), ErrorCode::InvalidArgument, "clip_grad_value", "clip_value", "-0.5");
}

}  // namespace
}  // namespace kirzl::optim
