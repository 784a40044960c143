// Internal: residual add fused with layer normalisation over the last dim.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// x, residual: contiguous, viewed as [M, N] (same dtype); weight/bias: contiguous [N] or
/// undefined. Writes sum = x + residual (rounded to x's dtype), y = layer_norm(sum) * w + b, and
/// each row's mean and 1/sqrt(var + eps) of the rounded sum into contiguous acc-dtype (f32; f64
/// for f64) mean/rstd [M]. sum and y are contiguous [M, N] in x's dtype.
KIRZL_DECLARE_KERNEL(residual_layer_norm_forward, void (*)(Tensor& sum, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias, int64_t n, double eps));
/// gx = g_sum + d layer_norm / d sum applied to g_y (which is also the residual's gradient).
/// g_y and g_sum are contiguous like sum; g_sum may be undefined (zero). Any of gx, gw, gb may be
/// undefined (not wanted); gw and gb are summed over rows in a fixed order (deterministic).
KIRZL_DECLARE_KERNEL(residual_layer_norm_backward, void (*)(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g_y, const Tensor& g_sum, const Tensor& sum, const Tensor& mean, const Tensor& rstd, const Tensor& weight, int64_t n));

}  // namespace kirzl::kernels
