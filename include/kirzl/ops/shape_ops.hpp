// Joining and splitting tensors. Differentiable.
#pragma once

#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl {

/// Concatenates along an existing dim; all other extents, dtypes and devices must match.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Stacks equal-shaped tensors along a new dim.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Views of `split_size` elements along `dim` (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
/// Views with the given sizes along `dim` (must sum to the extent).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// `chunks` nearly equal views along `dim`.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

}  // namespace kirzl
