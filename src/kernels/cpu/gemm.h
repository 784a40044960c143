// Internal (CPU): a strided-matrix GEMM on raw pointers, for kernels (conv2d) that call it per
// sample from inside their own parallel loops.
#pragma once

#include <cstdint>

#include "kirzl/tensor.hpp"

namespace kirzl::kernels::cpu {

/// A matrix view: element (i, j) is data[i * rs + j * cs].
template <typename T>
struct MatRef {
  T* data;
  int64_t rows, cols, rs, cs;
  MatRef<T> t() const { return {data, cols, rows, cs, rs}; }
};

/// out = alpha * a @ b + beta * out (beta == 0: out's contents are ignored). T is float or double.
/// Row- or column-major operands (any leading dimension) are used in place; others are copied.
/// Called inside an OpenMP parallel region, Eigen runs single-threaded; otherwise it may use
/// all threads.
template <typename T>
void gemm_raw(MatRef<T> out, MatRef<const T> a, MatRef<const T> b, T alpha, T beta);

/// A contiguous f32 copy of t: how kernels compute bf16/f16 tensors through the f32 GEMM.
Tensor widen_to_f32(const Tensor& t);

}  // namespace kirzl::kernels::cpu
