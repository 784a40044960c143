// Internal: 2-D convolution kernels (CPU: im2col + GEMM; CUDA: cuDNN).
#pragma once

#include <cstdint>

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// Sizes of one conv2d call: x [N, C, H, W], weight [Cout, C / groups, kh, kw], out [N, Cout, Ho, Wo].
struct Conv2dGeometry {
  int64_t N, C, H, W, Cout, kh, kw, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

/// out = conv(x, weight) + bias (bias may be undefined). All tensors contiguous, one dtype.
void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g);
/// grad_x = conv^T(grad_out, weight): the gradient of conv2d with respect to its input.
void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g);
/// grad_w = sum over samples of grad_out x im2col(x)^T.
void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g);

namespace cpu {
void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g);
void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g);
void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g);
}  // namespace cpu

/// CUDA (cuDNN, NCHW; f32, f64, bf16, f16): issued on the current stream of the tensors' device.
/// The algorithm is chosen once per geometry and dtype by cuDNN's heuristics among deterministic
/// algorithms, and cached. f32 is exact unless the thread holds an AllowTF32Guard. Built without
/// cuDNN, these throw Error{Unsupported}.
namespace cuda {
void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g);
void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g);
void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g);
}  // namespace cuda

}  // namespace kirzl::kernels
