// Test support: compares a result with a float64 reference using an error scale per element.
// For a sum of products (GEMM, convolution) the rounding error of element i is bounded by a
// multiple of eps * Σ|a||b| over the terms of that element, not of |result_i| (which may cancel
// to ~0), so the tolerance is rtol * scale_i, with scale = the same computation on |inputs|.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

namespace kirzl::testing {

/// Expects |actual_i - expected_i| <= rtol * scale_i + atol for every i; any device and dtype
/// (compared in f64 on the CPU). A NaN anywhere in actual fails (poisoned, unwritten outputs).
inline ::testing::AssertionResult close_scaled(const Tensor& actual, const Tensor& expected, const Tensor& scale,
                                               double rtol, double atol = 1e-12) {
  if (actual.shape() != expected.shape() || scale.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shapes differ: actual " << actual.describe() << ", expected "
                                         << expected.describe() << ", scale " << scale.describe();
  auto a = actual.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  auto e = expected.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  auto s = scale.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  int64_t bad = 0, first = -1, worst = -1;
  double worst_ratio = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - e[i]), tol = rtol * s[i] + atol;
    if (!(err <= tol)) {  // NaN fails
      if (first < 0) first = int64_t(i);
      ++bad;
      const double ratio = std::isnan(err) ? INFINITY : err / tol;
      if (worst < 0 || ratio > worst_ratio) worst_ratio = ratio, worst = int64_t(i);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.size() << " elements differ (rtol " << rtol
                                       << " x scale, atol " << atol << "); first at " << first << ": " << a[first]
                                       << " vs " << e[first] << " (scale " << s[first] << "); worst at " << worst
                                       << ": " << a[worst] << " vs " << e[worst] << " (scale " << s[worst] << ")";
}

}  // namespace kirzl::testing
