// Internal: 2-D max / average pooling kernels over contiguous [planes, H, W] tensors.
#pragma once

#include <cstdint>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// One pooling call: `planes` = N * C independent [H, W] images pooled to [Ho, Wo].
struct Pool2dGeometry {
  int64_t planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
};

/// out = max over each window (padding counts as -inf; NaN wins). When `indices` is defined
/// (i64, out's shape) it receives the flat h * W + w position of each maximum in its plane.
KIRZL_DECLARE_KERNEL(max_pool2d_forward, void (*)(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dGeometry& g));
/// grad_x = 0, then grad_x[plane][indices] += grad_out.
KIRZL_DECLARE_KERNEL(max_pool2d_backward, void (*)(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices, const Pool2dGeometry& g));
/// out = window sum / divisor: the full window when count_include_pad, else its in-input part.
KIRZL_DECLARE_KERNEL(avg_pool2d_forward, void (*)(Tensor& out, const Tensor& x, const Pool2dGeometry& g, bool count_include_pad));
KIRZL_DECLARE_KERNEL(avg_pool2d_backward, void (*)(Tensor& grad_x, const Tensor& grad_out, const Pool2dGeometry& g, bool count_include_pad));

}  // namespace kirzl::kernels
