// Internal: fused layer normalisation over the last `n` elements of each row.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// x, y: contiguous, viewed as [M, N]; weight/bias: [N] or undefined. Writes y and each row's
/// mean and 1/sqrt(var + eps) into contiguous acc-dtype (f32, f64 for f64) mean/rstd [M].
KIRZL_DECLARE_KERNEL(layer_norm_forward, void (*)(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                                  const Tensor& weight, const Tensor& bias, int64_t n, double eps));
/// Gradients from g (contiguous like x): any of gx, gw, gb may be undefined (not wanted).
/// gw and gb are summed over rows in a fixed order (deterministic).
KIRZL_DECLARE_KERNEL(layer_norm_backward,
                     void (*)(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                              const Tensor& rstd, const Tensor& weight, int64_t n));

}  // namespace kirzl::kernels
