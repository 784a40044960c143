// Internal: flash-style causal attention: the T x T scores are never stored; forward keeps the
// output and each row's log-sum-exp, backward recomputes the probabilities tile by tile.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// q, k, v: 4-D [B, H, T, D] of one floating dtype, with any strides for B, H and T but stride 1
/// in the last dim (e.g. split from a [B, T, 3C] projection and transposed: used in place, no
/// copy). out: [B, H, T, D] in q's dtype, any strides but stride 1 in the last dim (e.g. the head
/// view of a [B, T, C] output); lse: contiguous f32 [B, H, T] (f64 for f64),
/// the natural-log sum of exp(q_i . k_j * scale) over j <= i. The CPU kernels also take v (and so
/// out, g and gv) with a head dim of its own, Dv; the CUDA kernels need Dv == D.
KIRZL_DECLARE_KERNEL(flash_attention_forward, void (*)(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale));
/// Gradients from g = d out ([B, H, T, D], last-dim stride 1), the saved out and lse. gq, gk, gv
/// are [B, H, T, D] in q's dtype with last-dim stride 1 (all three defined, not overlapping: e.g.
/// the three head views of one d(qkv)). Deterministic: every gradient element is summed in a
/// fixed order (no atomics).
KIRZL_DECLARE_KERNEL(flash_attention_backward, void (*)(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale));

/// Whether the CUDA flash kernels take this dtype and head dim: f32, bf16 and f16 with D of 64 or
/// 128. Anything else uses the reference attention kernels (T x T probabilities).
inline bool flash_attention_cuda_supports(DType dtype, int64_t head_dim) {
  return (dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16) && (head_dim == 64 || head_dim == 128);
}

}  // namespace kirzl::kernels
