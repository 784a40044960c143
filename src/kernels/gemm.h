// Internal: the one matrix-multiply primitive behind matmul, bmm, linear and conv2d.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out = alpha * op(a) @ op(b) + beta * out, where op(x) is x or, when trans_x, x with its last two
/// dims swapped. a, b and out are >= 2-D with the same leading batch shape (a batch dim may have
/// stride 0, as after expand()); the matrix dims may have any strides: row- or column-major
/// layouts (transposed views included) are used in place, anything else is copied first. With
/// beta == 0 the prior contents of out are ignored (they may be uninitialised). f32 and f64 run
/// natively; bf16 and f16 are computed in f32.
/// CUDA (cuBLASLt): issued on the current stream of out's device, asynchronous with respect to
/// the host. f32 is exact f32 unless the calling thread holds an AllowTF32Guard
/// (kirzl/ops/linalg.hpp); bf16 and f16 accumulate in f32 (CUBLAS_COMPUTE_32F).
KIRZL_DECLARE_KERNEL(gemm, void (*)(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha, double beta));

/// out [M, N] = a [M, K] @ b[N, K]^T + bias[N] (bias added to every row): linear's forward. All
/// 2-D (bias 1-D, contiguous), one dtype and device; out may be uninitialised. CUDA: one cuBLASLt
/// call with the bias epilogue (CUBLASLT_EPILOGUE_BIAS) where cuBLASLt offers it for the dtype,
/// else a bias copy and a GEMM with beta = 1.
KIRZL_DECLARE_KERNEL(gemm_bias, void (*)(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias));

}  // namespace kirzl::kernels
