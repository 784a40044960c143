// Internal: reduction kernels.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out[kept...] = sum over the dims flagged in `reduce` (one flag per dim of x). `out` is
/// contiguous with x's shape minus the reduced dims. Floats accumulate in double, ints in i64.
KIRZL_DECLARE_KERNEL(sum, void (*)(Tensor& out, const Tensor& x, const std::vector<bool>& reduce));

/// Largest (is_max) or smallest element along `dim` of a contiguous x with x.size(dim) > 0:
/// `values` (x's dtype) and `indices` (i64, first occurrence) are contiguous with x's shape minus
/// `dim`; either may be undefined when not wanted. NaN counts as the extremum (first NaN wins).
KIRZL_DECLARE_KERNEL(extremum, void (*)(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim));

/// CUDA kernels (src/kernels/cuda/reduce.cu), issued on the current stream of x's device. x may be
/// strided for sum. Sums accumulate in f32 for f32/bf16/f16, f64 for f64 and i64 for integers, in
/// a fixed order that depends only on the shapes (deterministic, Note [cuda reductions]).

}  // namespace kirzl::kernels
