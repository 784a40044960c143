// Internal: softmax / log-softmax along one dimension, forward and backward.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out = softmax(x) (or log_softmax when `log`) along `dim`. x and out contiguous, same shape
/// and dtype.
KIRZL_DECLARE_KERNEL(softmax, void (*)(Tensor& out, const Tensor& x, int64_t dim, bool log));
/// Gradient of softmax / log_softmax from the output y and its gradient g (all contiguous):
/// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
KIRZL_DECLARE_KERNEL(softmax_backward, void (*)(Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim, bool log));

}  // namespace kirzl::kernels
