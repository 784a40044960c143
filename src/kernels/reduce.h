// Internal: reduction kernels.
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out[kept...] = sum over the dims flagged in `reduce` (one flag per dim of x). `out` is
/// contiguous with x's shape minus the reduced dims. Floats accumulate in double, ints in i64.
void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce);

namespace cpu {
void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce);
}

}  // namespace kirzl::kernels
