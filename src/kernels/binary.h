// Internal: binary elementwise kernels (arithmetic and comparisons) with broadcasting.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

enum class BinaryOp { Add, Sub, Mul, Div, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };

/// out = a op b, with a and b broadcast to out's shape. Arithmetic: a, b and out share one dtype.
/// Comparisons: a and b share one dtype, out is u8.
KIRZL_DECLARE_KERNEL(binary, void (*)(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b));

/// CUDA kernels (src/kernels/cuda/binary.cu): issued on out's device's current stream; out may be
/// strided. An integer division by zero yields 0 there (an asynchronous kernel cannot throw).

}  // namespace kirzl::kernels
