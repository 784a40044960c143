// Shared helpers of the CUDA elementwise/reduction tests: random inputs of any dtype, made on the
// CPU and copied, so the CPU reference and the CUDA kernel see identical values.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "support/cuda_compare.hpp"

namespace kirzl::testing {

// The device under test (the CPU in a dry run, see tests/support/cuda_compare.hpp).
inline const Device kGpu = test_gpu();
inline constexpr bool kDryRun = kGpuDryRun;

/// The large odd size of the tests (1000003 elements). KIRZL_GPU_TEST_QUICK=1 in the environment
/// makes it 4099 (still more than one block of vectors), for slow runs under compute-sanitizer.
inline const int64_t kBig = std::getenv("KIRZL_GPU_TEST_QUICK") ? 4099 : 1000003;

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v{DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16};
  return v;
}
inline const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> v{DType::f32, DType::f64, DType::bf16, DType::f16};
  return v;
}

/// Random CPU values of `dt`: normal(0, 2) for floats, integers in [lo, hi) otherwise.
inline Tensor random_cpu(const Shape& shape, DType dt, uint64_t seed, int64_t lo = 0, int64_t hi = 50) {
  Generator g(seed);
  if (is_floating(dt)) return normal(shape, 0.0, 2.0, {.dtype = DType::f64}, &g).to(dt);
  return randint(lo, hi, shape, {.dtype = dt}, &g);
}

/// The same tensor on the GPU as a view starting at element 1 of a larger buffer: its data
/// pointer is not 16-byte aligned, which the vectorised kernels must handle.
inline Tensor misaligned_gpu(const Tensor& cpu) {
  Tensor flat = cpu.reshape({-1});
  Tensor buf = empty({flat.numel() + 1}, {.dtype = cpu.dtype(), .device = kGpu});
  poison(buf);
  Tensor view = buf.narrow(0, 1, flat.numel());
  view.copy_(flat.to(kGpu));
  return view.view(cpu.shape());
}

/// A poisoned GPU output of `shape`, either contiguous or a strided view (every other element of
/// the last dim of a poisoned buffer).
inline Tensor poisoned_out(const Shape& shape, DType dt, bool strided) {
  // The CPU kernels (the dry run's "GPU") require contiguous outputs; the CUDA kernels do not.
  if (!strided || shape.size() == 0 || kDryRun) {
    Tensor t = empty(shape, {.dtype = dt, .device = kGpu});
    poison(t);
    return t;
  }
  Shape wide = shape;
  wide[wide.size() - 1] *= 2;
  Tensor buf = empty(wide, {.dtype = dt, .device = kGpu});
  poison(buf);
  return buf.slice(static_cast<int64_t>(wide.size()) - 1, 0, wide[wide.size() - 1], 2);
}

inline std::string name_of(DType dt) { return dtype_name(dt); }

}  // namespace kirzl::testing
