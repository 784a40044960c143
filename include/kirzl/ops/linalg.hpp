// Matrix products (CPU: Eigen GEMM; CUDA: cuBLASLt). Floating dtypes; bf16/f16 compute in f32.
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

/// Lets float32 matrix products (matmul, bmm, linear) and convolutions on CUDA issued by the
/// calling thread use TF32 tensor cores while the guard lives: inputs are rounded to a 10-bit
/// mantissa and products accumulate in f32, so results carry ~1e-3 relative error instead of
/// ~1e-6, for several times the throughput. Without a guard f32 is exact f32 (the default).
/// The setting is thread-local (no hidden global state: another thread's products are
/// unaffected) and scoped: guards nest, and the destructor restores the previous setting.
/// It is read when an op is issued, so a backward pass uses TF32 only if it runs inside a guard
/// too. No effect on CPU, f64, bf16 or f16.
class AllowTF32Guard {
 public:
  /// Sets the calling thread's TF32 permission to `allow` until the guard dies; `false` forbids
  /// TF32 inside an outer guard that allowed it. Never throws.
  explicit AllowTF32Guard(bool allow = true);
  ~AllowTF32Guard();
  AllowTF32Guard(const AllowTF32Guard&) = delete;
  AllowTF32Guard& operator=(const AllowTF32Guard&) = delete;

 private:
  bool previous_;
};

/// Whether the calling thread currently allows TF32 for f32 products (see AllowTF32Guard).
bool tf32_allowed() noexcept;

}  // namespace kirzl
