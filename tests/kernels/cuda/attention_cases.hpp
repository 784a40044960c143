// Test support for the GPU attention kernels' tests (flash, cuDNN): the inputs as a GPT block
// makes them, q/k/v as strided [B, H, T, D] views of one [B, T, 3 H D] projection, and the shape
// cases with their GoogleTest names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <kirzl/kirzl.hpp>

namespace kirzl::testing {

// The [B, H, T, D] view of part i (0: q, 1: k, 2: v) of a [B, T, 3 H D] projection: strides
// (T 3C, D, 3C, 1), non-contiguous with a unit last stride.
inline Tensor head_view(const Tensor& proj, int64_t i, int64_t H, int64_t D) {
  const int64_t B = proj.size(0), T = proj.size(1);
  return proj.slice(2, i * H * D, (i + 1) * H * D).reshape({B, T, H, D}).transpose(1, 2);
}

// A random [B, T, 3 H D] projection of dtype dt (normal values, drawn in f32).
inline Tensor random_proj(int64_t B, int64_t T, int64_t H, int64_t D, DType dt, uint64_t seed) {
  Generator gen(seed);
  return randn({B, T, 3 * H * D}, {.dtype = DType::f32}, &gen).to(dt);
}

struct AttentionCase {
  DType dtype;
  int64_t D, T;
};

// Every (dtype, D, T) combination.
inline std::vector<AttentionCase> attention_cases(std::vector<DType> dtypes, std::vector<int64_t> head_dims,
                                                  std::vector<int64_t> lengths) {
  std::vector<AttentionCase> cases;
  for (DType dt : dtypes)
    for (int64_t D : head_dims)
      for (int64_t T : lengths) cases.push_back({dt, D, T});
  return cases;
}

// "bf16_D64_T257".
inline std::string attention_case_name(const ::testing::TestParamInfo<AttentionCase>& i) {
  return std::string(dtype_name(i.param.dtype)) + "_D" + std::to_string(i.param.D) + "_T" + std::to_string(i.param.T);
}

}  // namespace kirzl::testing
