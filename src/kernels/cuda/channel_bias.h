// Internal (CUDA): adds a per-channel bias to an [N, C, S] tensor, for conv2d's forward (cuDNN's
// cudnnAddTensor does not cover every dtype kirzl runs convolutions in).
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels::cuda {

/// y[n, c, s] += bias[c] for a contiguous y [N, C, ...] and a contiguous bias [C] of y's dtype
/// (f32, f64, bf16, f16), computed in f32 (f64 for f64) and rounded once. In place on y, on the
/// current stream of y's device.
void add_channel_bias(Tensor& y, const Tensor& bias);

}  // namespace kirzl::kernels::cuda
