// Internal: the loss half of linear_cross_entropy: per-row online-softmax cross-entropy over
// logits, and its gradient written over the logits in place.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// logits: contiguous [N, V] (floating), of which the first `classes` (1 <= classes <= V) columns
/// are the classes and the rest padding that no softmax sees (Note [GPT vocabulary padding]);
/// targets: contiguous [N] i32/i64 in [0, classes) (range-checked by the op, on CUDA possibly
/// later, Note [device index check]: a target out of range gets a NaN loss on CUDA and is never
/// read through). Writes each row's loss (lse - logit[target]; 0 where the target is
/// ignore_index) and log-sum-exp over the classes into contiguous acc-dtype (f32; f64 for f64)
/// losses/lse [N]. One pass per row (online max and sum).
KIRZL_DECLARE_KERNEL(classifier_forward, void (*)(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets, int64_t classes, int64_t ignore_index));
/// In place: logits[r, j] <- (exp(logits[r, j] - lse[r]) - [j == target[r]]) * grad * scale for
/// j < classes, and zero in the padding columns j >= classes and on rows whose target is
/// ignore_index. `grad` holds one element (any floating dtype, on
/// logits' device): the upstream gradient of the mean loss, read on the device.
KIRZL_DECLARE_KERNEL(classifier_backward_inplace, void (*)(Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad, double scale, int64_t classes, int64_t ignore_index));

}  // namespace kirzl::kernels
