// Matrix products (CPU: Eigen GEMM). Floating dtypes; bf16/f16 compute in f32.
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl {

/// numpy matmul: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; higher ranks are
/// batches of matrices whose batch dimensions broadcast; a 1-D operand is promoted to a matrix
/// and the added dimension removed afterwards.
Tensor matmul(const Tensor& a, const Tensor& b);
/// Batched product of [B, n, k] and [B, k, m] (no broadcasting).
Tensor bmm(const Tensor& a, const Tensor& b);
/// y = x W^T + b for x [..., in], W [out, in], optional b [out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace kirzl
