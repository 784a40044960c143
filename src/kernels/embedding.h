// Internal: embedding lookup (row gather) and its gradient (deterministic row scatter-add).
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out[i, :] = weight[indices[i], :] for contiguous weight [num, dim], indices (i32/i64,
/// already range-checked) and out [numel(indices), dim].
KIRZL_DECLARE_KERNEL(embedding_forward, void (*)(Tensor& out, const Tensor& weight, const Tensor& indices));
/// gw (zeroed, contiguous [num, dim]) [indices[i], :] += g[i, :], in index order.
KIRZL_DECLARE_KERNEL(embedding_backward, void (*)(Tensor& gw, const Tensor& g, const Tensor& indices));

}  // namespace kirzl::kernels
