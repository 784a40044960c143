// Internal: reference causal attention (materialises the T x T probabilities; Note [attention path]).
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// For contiguous q, k [B, T, D], v [B, T, Dv]: probs[b, i, j] = softmax_j<=i(q_i . k_j * scale)
/// (acc dtype, zero above the diagonal) and out [B, T, Dv] = probs v.
KIRZL_DECLARE_KERNEL(attention_forward, void (*)(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale));
/// Gradients of q, k, v from g = d out (contiguous [B, T, Dv]); any of gq, gk, gv may be undefined.
KIRZL_DECLARE_KERNEL(attention_backward, void (*)(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale));

}  // namespace kirzl::kernels
