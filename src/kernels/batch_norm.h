// Internal: batch-normalisation kernels over a contiguous x viewed as [N, C, S] (S: the product
// of the trailing dims). Per-channel statistics and parameters are contiguous f64 [C] tensors.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// mean[c] and biased var[c] of x over N and S.
KIRZL_DECLARE_KERNEL(batch_norm_stats, void (*)(Tensor& mean, Tensor& var, const Tensor& x));
/// y = (x - mean) / sqrt(var + eps) * weight + bias; weight / bias may be undefined (1 / 0).
KIRZL_DECLARE_KERNEL(batch_norm_forward, void (*)(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias, double eps));
/// Gradients for the outputs that are defined: grad_x (x's dtype), grad_weight and grad_bias
/// (f64 [C]). `training`: mean and var were the batch statistics of x, so they depend on x.
KIRZL_DECLARE_KERNEL(batch_norm_backward, void (*)(Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias, const Tensor& grad_y, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, double eps, bool training));

/// CUDA: kirzl's own kernels (see Note [batch norm without cuDNN] in cuda/batch_norm.cu), on the
/// current stream of x's device; deterministic, f64 accumulation; built with or without cuDNN.

}  // namespace kirzl::kernels
