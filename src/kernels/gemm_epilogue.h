// Internal: the GEMM epilogues beyond the bias add (Note [GEMM epilogues]) -- the kernels, and the
// host-side rules that decide whether cuBLASLt is asked for one or the unfused kernels run.
//
// Note [GEMM epilogues]
// cuBLASLt can finish a matrix product with more than the bias add of gemm_bias:
//  - GELU_AUX_BIAS: y = gelu_tanh(a b^T + bias), keeping the pre-activation a b^T + bias in an
//    auxiliary matrix ("aux") for the backward;
//  - DGELU_BGRAD: gpre = (g w) * gelu_tanh'(pre), reading pre from aux, and the bias gradient
//    (column sums of gpre) into the bias pointer;
//  - BGRADB: gw = g^T x and the column sums of g (a linear's bias gradient) in one call.
// Through Note [row-major through column-major cuBLASLt], kirzl's row-major [M, N] output is
// cuBLASLt's column-major N x M matrix D, so "rows of D" are kirzl's columns: a bias of length N
// is what cuBLASLt's bias and DGELU_BGRAD's gradient want, and aux, a row-major [M, N] matrix
// with row stride N, is exactly a column-major N x M matrix with leading dimension N. BGRADB
// reduces cuBLASLt's second operand over k; for gw = g^T x that operand is g^T (run's A'), and k
// runs over g's rows, so it yields g's column sums.
// cuBLASLt's limits (cublasLt.h, cublasLtMatmulDescAttributes_t): the aux leading dimension must
// be a multiple of 8 elements; bias and aux pointers are read and written with vector accesses, so
// kirzl only offers 16-byte aligned ones; the aux and bias-gradient element types are the output's
// (so f64 and the integer types are never asked). Where these rules say no, or cuBLASLt's
// heuristic finds no algorithm, or cublasLtMatmul itself says NOT_SUPPORTED, the same result comes
// from the unfused kernels (a GEMM, then the elementwise or reduction kernel), and the reason is
// printed to stderr once per (epilogue, reason) and kept for epilogue_fallbacks().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// y [M, N] = gelu_tanh(pre), pre [M, N] = a [M, K] @ w [N, K]^T + bias [N]; the forward of
/// linear_bias_gelu. All 2-D (bias 1-D), one floating dtype and device, y and pre contiguous (may
/// be uninitialised). pre is the pre-activation the backward needs. CUDA only (one cuBLASLt call
/// with CUBLASLT_EPILOGUE_GELU_AUX_BIAS, else gemm_bias and a GELU kernel).
KIRZL_DECLARE_KERNEL(gemm_bias_gelu, void (*)(Tensor& y, Tensor& pre, const Tensor& a, const Tensor& w, const Tensor& bias));

/// gpre [M, N] = (g [M, K] @ w [K, N]) * gelu_tanh'(pre [M, N]) and gbias [N] = column sums of
/// gpre: the gradient through a GELU whose output gradient is the product g w (the GELU MLP's
/// backward, g being c_proj's output gradient). gpre and gbias contiguous, may be uninitialised;
/// gbias may be undefined. CUDA only (CUBLASLT_EPILOGUE_DGELU_BGRAD, else a GEMM and the
/// bias_gelu backward kernel).
KIRZL_DECLARE_KERNEL(gemm_dgelu_bgrad, void (*)(Tensor& gpre, Tensor& gbias, const Tensor& g, const Tensor& w, const Tensor& pre));

/// gw [N, K] = g [M, N]^T @ x [M, K] and gbias [N] = column sums of g: a linear's weight and bias
/// gradients in one call. gw and gbias contiguous, may be uninitialised. CUDA only
/// (CUBLASLT_EPILOGUE_BGRADB, else a GEMM and a sum).
KIRZL_DECLARE_KERNEL(gemm_bgradb, void (*)(Tensor& gw, Tensor& gbias, const Tensor& g, const Tensor& x));

/// Whether the ops may ask for the epilogues at all: KIRZL_GEMM_EPILOGUES, off by default while
/// they have not yet run on a GPU (read once per process). The kernels themselves do not check it.
bool gemm_epilogues_enabled();

/// The epilogues of Note [GEMM epilogues].
enum class GemmEpilogue { BiasGeluAux, DGeluBGrad, BGradB };

/// "GELU_AUX_BIAS", "DGELU_BGRAD", "BGRADB".
const char* epilogue_name(GemmEpilogue e);

/// The problem an epilogue is asked for, in kirzl's row-major terms: out [m, n], inner dim k;
/// the addresses of the bias (or bias gradient) vector and of aux (0 where the epilogue has none)
/// and aux's row stride in elements.
struct EpilogueProblem {
  GemmEpilogue epilogue;
  DType dtype;
  int64_t m, n, k;
  uintptr_t bias_address;
  uintptr_t aux_address;
  int64_t aux_row_stride;
};

/// Why cuBLASLt is not asked for this epilogue (Note [GEMM epilogues]), or "" when it may be.
std::string epilogue_unsupported_reason(const EpilogueProblem& p);

/// Records that `op` ran unfused for `reason`: the first time for this (op, reason), prints
/// "kirzl: <op>: cuBLASLt epilogue <name> not used (<reason>); running the unfused kernels" to
/// stderr and returns true; later times return false. Thread-safe.
bool note_epilogue_fallback(const std::string& op, GemmEpilogue e, const std::string& reason);

/// Every distinct fallback recorded so far, as "<op>: <name>: <reason>", in the order first seen.
std::vector<std::string> epilogue_fallbacks();

}  // namespace kirzl::kernels
