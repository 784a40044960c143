// Internal: fused layer normalisation over the last `n` elements of each row.
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// x, y: contiguous, viewed as [M, N]; weight/bias: [N] or undefined. Writes y and each row's
/// mean and 1/sqrt(var + eps) into contiguous acc-dtype (f32, f64 for f64) mean/rstd [M].
void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps);
/// Gradients from g (contiguous like x): any of gx, gw, gb may be undefined (not wanted).
/// gw and gb are summed over rows in a fixed order (deterministic).
void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n);

namespace cpu {
void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps);
void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n);
}  // namespace cpu

namespace cuda {
void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps);
void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n);
}  // namespace cuda

}  // namespace kirzl::kernels
