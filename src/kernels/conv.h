// Internal: 2-D convolution kernels (CPU: im2col + GEMM; CUDA: cuDNN).
#pragma once

#include <cstdint>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// Sizes of one conv2d call: x [N, C, H, W], weight [Cout, C / groups, kh, kw], out [N, Cout, Ho, Wo].
struct Conv2dGeometry {
  int64_t N, C, H, W, Cout, kh, kw, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

/// The CUDA kernels are cuDNN's (kernels/cuda/conv_cudnn.cpp); a build without cuDNN has none.
inline constexpr const char* kNeedsCudnn =
    "the CUDA conv2d kernels use cuDNN, and kirzl was built without cuDNN (configure with -DKIRZL_WITH_CUDNN=ON)";

/// out = conv(x, weight) + bias (bias may be undefined). All tensors contiguous, one dtype.
KIRZL_DECLARE_KERNEL_REQUIRING(conv2d_forward, kNeedsCudnn, void (*)(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g));
/// grad_x = conv^T(grad_out, weight): the gradient of conv2d with respect to its input.
KIRZL_DECLARE_KERNEL_REQUIRING(conv2d_backward_input, kNeedsCudnn, void (*)(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g));
/// grad_w = sum over samples of grad_out x im2col(x)^T.
KIRZL_DECLARE_KERNEL_REQUIRING(conv2d_backward_weight, kNeedsCudnn, void (*)(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g));

/// CUDA (cuDNN, NCHW; f32, f64, bf16, f16): issued on the current stream of the tensors' device.
/// The algorithm is chosen once per geometry and dtype by cuDNN's heuristics among deterministic
/// algorithms, and cached. f32 is exact unless the thread holds an AllowTF32Guard.

}  // namespace kirzl::kernels
