// Reductions over any set of dimensions. Floating inputs accumulate in at least f32 (f64 for f64).
#pragma once

#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl {

/// Dimensions to reduce; negative values count from the end. Empty means "all dimensions".
using Dims = std::vector<int64_t>;

/// Sum over `dims` (all when empty). keepdim leaves reduced dims with extent 1. Integer inputs
/// sum in i64.
Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// Variance with Bessel-style `correction` (1: unbiased, 0: population).
Tensor var(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
/// Largest / smallest element over all dimensions (0-d result).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
/// Largest / smallest along one dimension; the gradient flows to the first extremal element.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index (i64) of the first largest / smallest element along `dim`.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Sums `x` down to `shape` (the inverse of broadcasting): used by backward of broadcasting ops.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace kirzl
