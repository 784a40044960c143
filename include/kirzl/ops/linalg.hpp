// Matrix products (CPU: Eigen GEMM). Floating dtypes; bf16/f16 compute in f32.
//
// Both operands must have the same floating dtype: mixing dtypes (e.g. f32 x f64) throws
// Error{InvalidArgument, "... expected same dtype ..."} rather than promoting, so that a silent
// f64 upcast never slows a model down; integer operands throw Error{InvalidArgument} too.
// Operands must be on one device. Results are new contiguous tensors; strided and transposed
// operands are read in place (no copy) where the layout allows. Differentiable in both operands.
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl {

/// numpy matmul: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; higher ranks are
/// batches of matrices whose batch dimensions broadcast; a 1-D operand is promoted to a matrix
/// and the added dimension removed afterwards.
Tensor matmul(const Tensor& a, const Tensor& b);
/// Batched product of [B, n, k] and [B, k, m] (no broadcasting).
Tensor bmm(const Tensor& a, const Tensor& b);
/// y = x W^T + b for x [..., in], W [out, in], optional b [out] (all one dtype).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace kirzl
