// Internal: cross-entropy fused with log-softmax, forward and backward.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// For contiguous logits [N, C, S...] (C at dim 1; a [C] tensor is one row) and contiguous
/// integer targets with one entry per row (N*S, already range-checked): writes each row's loss
/// (0 where the target is ignore_index) and log-sum-exp into contiguous acc-dtype (f32, f64 for
/// f64) tensors with one element per row.
KIRZL_DECLARE_KERNEL(cross_entropy_forward, void (*)(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing));
/// gx = (softmax(logits) - smoothed one-hot(target)) * grad[row] * scale, zero on ignored rows.
/// `grad` (logits' dtype, contiguous) holds one element for all rows or one per row.
KIRZL_DECLARE_KERNEL(cross_entropy_backward, void (*)(Tensor& gx, const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad, double scale, int64_t ignore_index, double label_smoothing));

}  // namespace kirzl::kernels
