// Fused operations for transformer training: each is one differentiable op whose forward and
// backward run as few passes over memory as possible. Each equals (to rounding) the composition of
// the plain ops named in its comment; the fused versions save less for backward and launch fewer
// kernels on the GPU. All run on the CPU (reference kernels) and on CUDA.
//
// Stream semantics: on CUDA, every kernel and GEMM is enqueued on the device's current stream and
// the call returns without waiting, except where a comment says it reads values back to the host.
// Thread safety: as for every op, calls on distinct tensors may run concurrently.
#pragma once

#include <cstdint>

#include "kirzl/tensor.hpp"

namespace kirzl {

/// Both results of residual_layer_norm.
struct ResidualLayerNormResult {
  Tensor sum;     ///< x + residual, in x's dtype (the next residual stream)
  Tensor normed;  ///< layer_norm(sum) over the last dim, with the affine weight/bias
};

/// sum = x + residual; normed = layer_norm(sum, {C}, weight, bias, eps), C = x.size(-1), in one
/// pass. x and residual share one shape and floating dtype (any strides: strided inputs are copied
/// first); weight and bias are [C] of that dtype, or undefined (no affine). The statistics are
/// taken over the rounded sum (as the unfused `add` then `layer_norm` would), in f32 (f64 for f64).
/// Both results are new contiguous tensors. Differentiable once in x, residual, weight and bias:
/// the backward adds the gradient arriving at `sum` to the one from `normed` in the same kernel;
/// it saves only `sum` and two floats per row.
ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                            const Tensor& bias, double eps = 1e-5);

/// gelu_tanh(x + bias), GPT-2's tanh approximation of GELU:
/// 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3))), h = x + bias, with bias [C] broadcast over
/// the last dim of x (C = x.size(-1)); one floating dtype. h is rounded to x's dtype first, as the
/// unfused `add` then `gelu` would. Returns a new contiguous tensor. Differentiable once in x and
/// bias; the backward recomputes h from the saved x and bias (h itself is not kept) and sums the
/// bias gradient over rows in a fixed order (deterministic).
Tensor bias_gelu(const Tensor& x, const Tensor& bias);

/// gelu_tanh(linear(x, weight, bias)): x [..., K], weight [N, K], bias [N], one floating dtype;
/// returns a new contiguous [..., N]. Equals bias_gelu(linear(x, weight), bias) up to rounding:
/// on CUDA one cuBLASLt GEMM whose epilogue adds the bias, applies the GELU and stores the
/// pre-activation x weight^T + bias for the backward (CUBLASLT_EPILOGUE_GELU_AUX_BIAS; the GELU
/// is taken of the unrounded f32 pre-activation, where the composition rounds it to x's dtype
/// first); on the CPU that composition itself. Where cuBLASLt declines the epilogue (f64, a
/// misaligned bias, N not a multiple of 8, no algorithm), CUDA runs the unfused kernels instead and
/// says so once on stderr. Differentiable once in x, weight and bias; saves x, weight and the
/// pre-activation [.., N].
Tensor linear_bias_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias);

/// GPT-2's MLP without dropout: linear(linear_bias_gelu(x, fc_weight, fc_bias), proj_weight,
/// proj_bias), with x [..., K], fc_weight [H, K], fc_bias [H], proj_weight [C, H], proj_bias [C],
/// one floating dtype; returns a new contiguous [..., C]. On the CPU exactly that composition. On
/// CUDA the forward is two cuBLASLt GEMMs (GELU_AUX_BIAS, then BIAS) and the backward puts every
/// bias gradient and the GELU's derivative into GEMM epilogues: c_proj's weight and bias gradients
/// in one GEMM (CUBLASLT_EPILOGUE_BGRADB), and the GEMM that turns the output gradient into the
/// GELU's applies gelu_tanh' and sums c_fc's bias gradient (CUBLASLT_EPILOGUE_DGELU_BGRAD), so no
/// separate elementwise or column-sum kernel runs; each falls back to the unfused kernels as
/// linear_bias_gelu does. Differentiable once in all five; saves x, both weights, the
/// pre-activation and the GELU output [.., H], as the composition does.
Tensor gelu_mlp(const Tensor& x, const Tensor& fc_weight, const Tensor& fc_bias, const Tensor& proj_weight,
                const Tensor& proj_bias);

/// Options of linear_cross_entropy: `{.chunk_rows = 4096, .num_classes = config.vocab_size}`.
struct LinearCrossEntropyOptions {
  int64_t ignore_index = -100;  ///< rows whose target equals this contribute nothing and are not counted
  /// 0: the logits [N, V] are kept from forward to backward and overwritten there by their own
  /// gradient (one buffer of N x V). > 0: the rows are processed in chunks of this many; forward
  /// keeps no logits, backward recomputes each chunk's logits (one extra GEMM) in a buffer of
  /// chunk_rows x V. Same results either way, up to the order of the weight-gradient sums.
  int64_t chunk_rows = 0;
  /// 0: every row of weight is a class. 0 < num_classes <= V: only weight's first num_classes
  /// rows are classes; the other rows (padding, e.g. a vocabulary rounded up to a multiple of 128
  /// so that the GEMM's leading dimension is aligned) are still multiplied in the GEMM, but their
  /// logits enter no softmax: those rows of weight get an exactly zero gradient and add nothing to
  /// hidden's. Targets must then lie in [0, num_classes) (or be ignore_index).
  int64_t num_classes = 0;
};

/// Mean cross-entropy of logits = hidden @ weight^T against `targets`, fused: hidden [N, C] and
/// weight [V, C] (one floating dtype, any strides), targets [N] of i32/i64 with values in [0, V)
/// (V = options.num_classes when set) or ignore_index (else Error{InvalidArgument}; on CUDA thrown
/// at the next synchronising point unless KIRZL_SYNC_INDEX_CHECKS=1, as cross_entropy says; the
/// call does not wait for the GPU).
/// The logits come from the GEMM kernel, each row's loss from an
/// online softmax in f32 (f64 for f64); the mean is over the rows not ignored (NaN if none, with a
/// zero gradient, as cross_entropy). Returns a 0-d tensor in the accumulation dtype (f32 for
/// bf16/f16/f32, f64 for f64), so that a bf16 model's loss keeps f32 precision.
/// Equals cross_entropy(matmul(hidden, weight.t()), targets) with logits rounded to hidden's dtype.
/// Differentiable once in hidden and weight. Backward writes d logits into the logits buffer in
/// place (no second N x V buffer), then runs the GEMMs for d hidden and d weight.
/// Memory: one N x V buffer (hidden's dtype) lives from forward to backward unless chunk_rows > 0.
Tensor linear_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                            const LinearCrossEntropyOptions& options = {});

}  // namespace kirzl
