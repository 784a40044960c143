// Internal: dropout with a counter-based mask.
//
// Note [dropout mask]: element i (row-major) is dropped when uint_to_unit_float(word) < p, where
// word is word i % 4 of Generator::philox(seed, offset + i / 4). The mask is a pure function of
// (seed, offset, i): backward regenerates it instead of storing it, and a CUDA kernel can
// reproduce it bit for bit.
#pragma once

#include <cstdint>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out[i] = keep(i) ? in[i] * scale : 0 for contiguous in/out of one floating dtype.
KIRZL_DECLARE_KERNEL(dropout_apply, void (*)(Tensor& out, const Tensor& in, double p, double scale, uint64_t seed, uint64_t offset));

/// CUDA kernel (src/kernels/cuda/dropout.cu): the same mask as the CPU, bit for bit.

}  // namespace kirzl::kernels
