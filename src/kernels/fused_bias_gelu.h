// Internal: bias add fused with the tanh-approximated GELU.
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// x contiguous, viewed as [M, N]; bias contiguous [N] (x's dtype). y (contiguous, x's dtype) =
/// gelu_tanh(h), h = x + bias rounded to x's dtype.
KIRZL_DECLARE_KERNEL(bias_gelu_forward, void (*)(Tensor& y, const Tensor& x, const Tensor& bias, int64_t n));
/// gx = g * gelu_tanh'(h) (h recomputed from x and bias); gbias = column sums of gx before
/// rounding, in a fixed order (deterministic). g contiguous like x; gx or gbias may be undefined.
KIRZL_DECLARE_KERNEL(bias_gelu_backward, void (*)(Tensor& gx, Tensor& gbias, const Tensor& g, const Tensor& x, const Tensor& bias, int64_t n));

}  // namespace kirzl::kernels
