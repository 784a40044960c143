// Neural-network functions: activations over a dimension, losses, normalisation, convolution,
// pooling, dropout, embedding, attention. All differentiable with respect to floating inputs.
#pragma once

#include <array>
#include <vector>

#include "kirzl/core/generator.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

/// Softmax / log-softmax along `dim` (numerically stable: max-subtracted).
Tensor softmax(const Tensor& x, int64_t dim = -1);
/// log(softmax(x)) along `dim`, computed as x - max - log(sum(exp(x - max))): finite where
/// softmax underflows to 0.
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

/// How a loss combines its per-element (per-target) losses: their mean (a 0-d tensor), their sum
/// (0-d), or none (the per-element losses, in the targets' shape).
enum class Reduction { Mean, Sum, None };

/// Options of cross_entropy: `{.ignore_index = 0, .label_smoothing = 0.1}`.
struct CrossEntropyOptions {
  int64_t ignore_index = -100;  ///< targets equal to this contribute nothing (and are not counted in the mean)
  double label_smoothing = 0.0; ///< in [0, 1]: mixes the one-hot target with the uniform distribution
  Reduction reduction = Reduction::Mean;  ///< Mean over the targets that are not ignore_index, Sum, or None
};
/// Cross-entropy of `logits` [N, C] (or [N, C, d1, ...]) against integer class `targets` [N]
/// (or [N, d1, ...], i32/i64), fused with log_softmax. A target outside [0, C) that is not
/// ignore_index throws Error{InvalidArgument}: on the CPU at the call; on CUDA at the next point
/// where the host waits for the device (cuda::synchronize, Stream/Event::synchronize, a copy to
/// the host such as item()), or at the call under KIRZL_SYNC_INDEX_CHECKS=1
/// (cuda::sync_index_checks); the call itself does not wait for the GPU. With Reduction::Mean the sum is divided by the number
/// of targets that are not ignore_index; when every target is ignored the result is NaN (0/0, as in
/// PyTorch) and the gradient is zero. Differentiable once (the fused backward records no graph).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});
/// Mean (or sum, or none) of squared differences; shapes broadcast.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

/// Layer normalisation over the trailing dims `normalized_shape`, with optional elementwise
/// affine `weight` and `bias` of that shape. Statistics in f32 (f64 for f64 inputs).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

/// Rows of `weight` [num, dim] picked by integer `indices` (any shape) -> [..., dim]. An index
/// outside [0, num) throws Error{InvalidArgument}, on CUDA at the next synchronising point unless
/// KIRZL_SYNC_INDEX_CHECKS=1, as cross_entropy says. Gradient flows to weight only.
Tensor embedding(const Tensor& weight, const Tensor& indices);

/// Zeroes each element with probability p and scales the rest by 1/(1-p) when `training`;
/// identity otherwise. Uses `gen` or the default generator: seeded, reproducible. p must be in
/// [0, 1]; p == 1 gives zeros. The mask is a function of the generator's seed and position only
/// (ceil(numel / 4) Philox blocks are reserved per call), identical on every machine.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

/// Options of conv2d, each pair {height, width}: `{.stride = {2, 2}, .padding = {1, 1}}`.
/// Out-of-range values throw Error{InvalidArgument} at the call.
struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};    ///< step of the window between outputs; >= 1
  std::array<int64_t, 2> padding{0, 0};   ///< zeros added on each side of the input; >= 0
  std::array<int64_t, 2> dilation{1, 1};  ///< spacing between kernel taps (1: dense kernel); >= 1
  int64_t groups = 1;  ///< channel groups convolved separately; divides Cin and Cout (Cin: depthwise)
};
/// 2-D convolution (cross-correlation) of x [N, Cin, H, W] (or unbatched [Cin, H, W]) with weight
/// [Cout, Cin/groups, kH, kW] and optional bias [Cout], all of one floating dtype (no promotion:
/// mixing throws Error{InvalidArgument}). CPU: im2col + GEMM; bf16/f16 compute in f32.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& options = {});

/// Options of max_pool2d and avg_pool2d, each pair {height, width}: `{.kernel_size = {3, 3},
/// .stride = {2, 2}, .padding = {1, 1}}`.
struct Pool2dOptions {
  std::array<int64_t, 2> kernel_size{2, 2};  ///< window size; >= 1
  std::array<int64_t, 2> stride{0, 0};  ///< 0 means "equal to kernel_size"
  /// Implicit border on each side, at most half the kernel: max pooling never picks it, average
  /// pooling counts it as zeros (see count_include_pad).
  std::array<int64_t, 2> padding{0, 0};
  bool count_include_pad = true;        ///< avg_pool2d only: divide by the full window size
};
/// Max / average pooling of x [N, C, H, W] (or [C, H, W]). Padding may be at most half the
/// kernel, and the kernel must fit the padded input; otherwise Error{InvalidArgument}.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options = {});
/// Average pooling, with the shapes and checks of max_pool2d: each output is the mean of its
/// window (see Pool2dOptions::count_include_pad for windows that overlap the padding).
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options = {});

/// Batch normalisation of x [N, C, ...] over all dims but C. In training, normalises with the
/// batch statistics and updates `running_mean`/`running_var` in place (if defined) with
/// `momentum` (running_var uses the unbiased variance); in eval, uses the running statistics.
/// weight, bias and the running statistics are [C] of any floating dtype (e.g. f32 for a bf16 x);
/// statistics are computed in f64. Gradients flow to x, weight and bias in both modes.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

/// Causal scaled-dot-product attention of q, k, v [B, H, T, D] (or [..., T, D]; v's last dim Dv
/// may differ from D): softmax(q k^T / sqrt(D) + causal mask) v. The kernels (KIRZL_ATTENTION=auto,
/// the default): on the CPU flash kernels, which save only the output and one log-sum-exp per row
/// for the backward, never the T x T probabilities; on CUDA cuDNN's fused attention (tensor cores)
/// for bf16/f16 with D = Dv where the build has the cuDNN frontend and cuDNN takes the shape (D a
/// multiple of 8, up to 128, or 256 on sm_90), else kirzl's flash kernels for f32/bf16/f16 with
/// D = Dv in {64, 128}, else the reference kernel (saves the T x T probabilities). Flash kernels
/// and cuDNN read strided 4-D views in place. KIRZL_ATTENTION=cudnn, flash or reference forces one
/// (cudnn where cuDNN cannot: Error{Unsupported} with the reason; reference runs on both devices).
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v);

/// Causal self-attention straight from a qkv projection: qkv [B, T, 3C] holds q, k and v side by
/// side in its last dim (in that order), each of n_head heads of D = C / n_head; returns
/// [B, T, C], the heads' outputs side by side. The same values as splitting qkv in three, viewing
/// each as [B, n_head, T, D], causal_attention, and back to [B, T, C] (which is what the reference
/// kernels run), and one gradient d(qkv) [B, T, 3C]. The flash kernels (the CPU's, and CUDA's) and
/// cuDNN (see causal_attention for when) read q, k, v in place and write the output as [B, T, C]
/// and d(qkv)'s three parts in place: no split, transpose or concatenation copies.
Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head);

}  // namespace kirzl
