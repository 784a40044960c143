// Internal: the copy/convert kernel behind contiguous(), clone(), to(dtype) and copy_().
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// dst[...] = convert(src[...]) with src broadcast to dst's shape. dst and src on one device.
KIRZL_DECLARE_KERNEL(copy, void (*)(Tensor& dst, const Tensor& src));
/// Sets every element of dst (any strides) to value.
KIRZL_DECLARE_KERNEL(fill, void (*)(Tensor& dst, double value));

/// CUDA kernels (src/kernels/cuda/copy.cu), issued on the current stream of dst's device.

}  // namespace kirzl::kernels
