// Internal: embedding lookup (row gather) and its gradient (deterministic row scatter-add).
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// out[i, :] = weight[indices[i], :] for contiguous weight [num, dim], indices (i32/i64,
/// already range-checked) and out [numel(indices), dim].
void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices);
/// gw (zeroed, contiguous [num, dim]) [indices[i], :] += g[i, :], in index order.
void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices);

namespace cpu {
void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices);
void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices);
}  // namespace cpu

namespace cuda {
void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices);
void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices);
}  // namespace cuda

}  // namespace kirzl::kernels
