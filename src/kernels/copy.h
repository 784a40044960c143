// Internal: the copy/convert kernel behind contiguous(), clone(), to(dtype) and copy_().
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// dst[...] = convert(src[...]) with src broadcast to dst's shape. dst and src on one device.
void copy(Tensor& dst, const Tensor& src);
/// Sets every element of dst (any strides) to value.
void fill(Tensor& dst, double value);

namespace cpu {
void copy(Tensor& dst, const Tensor& src);
void fill(Tensor& dst, double value);
}  // namespace cpu

/// CUDA kernels (src/kernels/cuda/copy.cu), issued on the current stream of dst's device.
namespace cuda {
void copy(Tensor& dst, const Tensor& src);
void fill(Tensor& dst, double value);
}  // namespace cuda

}  // namespace kirzl::kernels
