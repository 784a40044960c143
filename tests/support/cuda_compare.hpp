// Test support for GPU tests (label gpu): skip with the reason when there is no GPU, poison
// outputs so unwritten elements are caught, and compare a CUDA result to the CPU reference with
// per-dtype tolerances.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

namespace kirzl::testing {

/// Why GPU tests cannot run here, or "" when they can.
inline std::string no_gpu_reason() {
#if KIRZL_HAS_CUDA
  if (!cuda::is_available()) return "no CUDA device is visible on this machine (kirzl::cuda::device_count() == 0)";
  return "";
#else
  return "kirzl was built without CUDA (KIRZL_WITH_CUDA=OFF or no toolkit found)";
#endif
}

/// Tolerances of a CUDA result against the CPU result, per dtype of the compared tensors.
struct Tolerance {
  double rtol;
  double atol;
};
inline Tolerance tolerance_for(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-12, 1e-12};
    case DType::f32: return {1e-5, 1e-6};
    case DType::bf16: return {1e-2, 1e-2};
    case DType::f16: return {2e-3, 1e-3};
    default: return {0, 0};  // integers: exact
  }
}

/// Fills `t` (any device) with a value no kernel produces by accident: NaN for floats, a large
/// sentinel for integers. Kernels that leave elements unwritten then fail the comparison.
inline void poison(Tensor& t) {
  if (is_floating(t.dtype())) t.fill_(std::numeric_limits<double>::quiet_NaN());
  else t.fill_(t.dtype() == DType::u8 ? 0xAB : 12345);
}

/// Expects `actual` (any device) to equal `expected` (CPU) elementwise within
/// |a - e| <= atol + rtol * |e|; NaN must match NaN. Reports the count of mismatches, the first
/// one and the largest error.
inline ::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, Tolerance tol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << actual.describe() << " vs expected " << expected.describe();
  Tensor a = actual.to(Device::cpu()).to(DType::f64).contiguous();
  Tensor e = expected.to(Device::cpu()).to(DType::f64).contiguous();
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  int64_t bad = 0, first = -1, worst = -1;
  double worst_err = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    bool ok;
    double err = std::abs(pa[i] - pe[i]);
    if (std::isnan(pe[i]) || std::isnan(pa[i])) ok = std::isnan(pe[i]) && std::isnan(pa[i]);
    else if (std::isinf(pe[i]) || std::isinf(pa[i])) ok = pa[i] == pe[i];
    else ok = err <= tol.atol + tol.rtol * std::abs(pe[i]);
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
      if (!(err <= worst_err)) worst_err = err, worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  auto f = ::testing::AssertionFailure();
  f << bad << " of " << a.numel() << " elements differ (rtol " << tol.rtol << ", atol " << tol.atol << "); first at flat index "
    << first << ": " << pa[first] << " vs expected " << pe[first];
  if (worst >= 0) f << "; largest error " << worst_err << " at " << worst << ": " << pa[worst] << " vs " << pe[worst];
  return f;
}
inline ::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected) {
  return all_close(actual, expected, tolerance_for(actual.dtype()));
}

/// Same dtype, shape and bytes (NaNs compared by their bits): for results that must be
/// reproducible bit for bit.
inline ::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()).contiguous(), y = b.to(Device::cpu()).contiguous();
  if (x.dtype() != y.dtype() || x.shape() != y.shape())
    return ::testing::AssertionFailure() << x.describe() << " vs " << y.describe();
  if (x.nbytes() != 0 && std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0)
    return ::testing::AssertionFailure() << "bytes differ between " << x.describe() << " and " << y.describe();
  return ::testing::AssertionSuccess();
}

/// Uniform values in [lo, hi) of dtype `dt` on the CPU, from a fixed-seed generator.
inline Tensor uniform_cpu(const Shape& s, DType dt, double lo = -3, double hi = 3, uint64_t seed = 1) {
  Generator gen(seed);
  return uniform(s, lo, hi, {.dtype = DType::f64}, &gen).to(dt);
}

/// A non-contiguous view holding the same values as `t` (same device and dtype): the values are
/// placed at every other element of the last dimension of a larger buffer whose gaps are poisoned.
inline Tensor non_contiguous_copy(const Tensor& t) {
  Shape wide = t.shape();
  if (wide.size() == 0) return t.clone();
  wide[wide.size() - 1] *= 2;
  Tensor buf = empty(wide, TensorOptions{.dtype = t.dtype(), .device = t.device()});
  poison(buf);
  Tensor view = buf.slice(static_cast<int64_t>(wide.size()) - 1, 0, wide[wide.size() - 1], 2);
  view.copy_(t);
  return view;
}

}  // namespace kirzl::testing

namespace kirzl::testing {

// KIRZL_TEST_GPU_AS_CPU (never set by the build; define it by hand): a dry run of the GPU tests'
// own logic on a machine without a GPU -- "the GPU" is the CPU, so every comparison is CPU
// against CPU, and a test that cannot fail that way is caught before it reaches a GPU.
#ifdef KIRZL_TEST_GPU_AS_CPU
inline Device test_gpu() { return Device::cpu(); }
inline constexpr bool kGpuDryRun = true;
#else
inline Device test_gpu() { return Device::cuda(0); }
inline constexpr bool kGpuDryRun = false;
#endif

}  // namespace kirzl::testing

/// First line of every GPU test: skips with the printed reason when no GPU can run it.
#ifdef KIRZL_TEST_GPU_AS_CPU
#define KIRZL_REQUIRE_GPU() \
  do {                      \
  } while (0)
#else
#define KIRZL_REQUIRE_GPU()                                                                  \
  do {                                                                                       \
    std::string kirzl_reason_ = ::kirzl::testing::no_gpu_reason();                           \
    if (!kirzl_reason_.empty()) GTEST_SKIP() << "GPU test skipped: " << kirzl_reason_;       \
  } while (0)
#endif

/// First line of a GPU test that needs a real device even in a dry run (KIRZL_TEST_GPU_AS_CPU),
/// e.g. CUDA graphs or device timing: skips there, naming `what`.
#define KIRZL_REQUIRE_REAL_GPU(what)                                                              \
  do {                                                                                          \
    KIRZL_REQUIRE_GPU();                                                                        \
    if (::kirzl::testing::kGpuDryRun) GTEST_SKIP() << what << " needs a real GPU (dry run)";    \
  } while (0)
