// Joining (cat, stack) and splitting (split, chunk) tensors.
#include <algorithm>
#include <string>

#include "kirzl/autograd.hpp"
#include "kirzl/ops/shape_ops.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Checks that tensors[i] can be joined with tensors[0] along `dim` (all extents equal when
// `same_shape`, else all but dim). Names the offending index and both shapes.
void check_joinable(const char* op, const std::vector<Tensor>& tensors, int64_t dim, bool same_shape) {
  const Tensor& t0 = tensors[0];
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KIRZL_CHECK(t.defined(), op, ": tensor ", i, " is undefined");
    KIRZL_CHECK(t.dtype() == t0.dtype(), op, ": tensor ", i, " ", t.describe(), " has a different dtype from tensor 0 ",
                t0.describe());
    KIRZL_CHECK(t.device() == t0.device(), op, ": tensor ", i, " ", t.describe(),
                " is on a different device from tensor 0 ", t0.describe());
    bool ok = t.dim() == t0.dim();
    for (int64_t d = 0; ok && d < t.dim(); ++d) ok = t.size(d) == t0.size(d) || (!same_shape && d == dim);
    KIRZL_CHECK(ok, op, ": tensor ", i, " has shape ", t.shape().str(), " but tensor 0 has shape ", t0.shape().str(),
                same_shape ? " (expected equal shapes)" : " (expected equal rank and equal extents except along dimension ",
                same_shape ? "" : std::to_string(dim) + ")");
  }
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim0) {
  KIRZL_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  ops::check_defined("cat", tensors[0], "tensor 0");
  KIRZL_CHECK(tensors[0].dim() > 0, "cat: cannot concatenate 0-d tensors (", tensors[0].describe(),
              "); use stack");
  const int64_t dim = ops::wrap_dim("cat", dim0, tensors[0].dim(), tensors[0]);
  check_joinable("cat", tensors, dim, false);
  Shape shape = tensors[0].shape();
  shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) {
    sizes.push_back(t.size(dim));
    shape[dim] += t.size(dim);
  }
  Tensor out = empty(shape, options_of(tensors[0]));
  {
    NoGradGuard ng;
    int64_t off = 0;
    for (const Tensor& t : tensors) {
      if (t.size(dim) > 0) out.narrow(dim, off, t.size(dim)).copy_(t);
      off += t.size(dim);
    }
  }
  autograd::record("cat", out, tensors, [sizes, dim](const autograd::GradContext& c) {
    std::vector<Tensor> grads;
    int64_t off = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      grads.push_back(c.needs(i) ? c.grad().narrow(dim, off, sizes[i]) : Tensor());
      off += sizes[i];
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim0) {
  KIRZL_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  ops::check_defined("stack", tensors[0], "tensor 0");
  // The new dim may go anywhere in [0, rank]: wrap against rank + 1.
  const int64_t rank = tensors[0].dim() + 1;
  KIRZL_CHECK(dim0 >= -rank && dim0 < rank, "stack: dimension ", dim0, " is out of range for stacking ",
              tensors[0].describe(), " (expected ", -rank, " .. ", rank - 1, ")");
  const int64_t dim = dim0 < 0 ? dim0 + rank : dim0;
  check_joinable("stack", tensors, dim, true);
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(dim));
  return cat(parts, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim0) {
  ops::check_defined("split", x, "x");
  const int64_t dim = ops::wrap_dim("split", dim0, x.dim(), x);
  KIRZL_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor ", x.describe());
  int64_t total = 0;
  for (int64_t s : sizes) {
    KIRZL_CHECK(s >= 0, "split: sizes must be >= 0, got ", s, " when splitting ", x.describe());
    total += s;
  }
  KIRZL_CHECK(total == x.size(dim), "split: sizes sum to ", total, " but dimension ", dim, " of ", x.describe(),
              " has extent ", x.size(dim));
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, off, s));
    off += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim0) {
  ops::check_defined("split", x, "x");
  const int64_t dim = ops::wrap_dim("split", dim0, x.dim(), x);
  KIRZL_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor ", x.describe());
  const int64_t n = x.size(dim);
  KIRZL_CHECK(split_size > 0 || (split_size == 0 && n == 0), "split: split_size must be > 0, got ", split_size,
              " for ", x.describe());
  std::vector<int64_t> sizes;
  if (n == 0) sizes.push_back(0);  // one empty piece, as in PyTorch
  for (int64_t off = 0; off < n; off += split_size) sizes.push_back(std::min(split_size, n - off));
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim0) {
  ops::check_defined("chunk", x, "x");
  KIRZL_CHECK(chunks > 0, "chunk: number of chunks must be > 0, got ", chunks, " for ", x.describe());
  const int64_t dim = ops::wrap_dim("chunk", dim0, x.dim(), x);
  KIRZL_CHECK(x.dim() > 0, "chunk: cannot split a 0-d tensor ", x.describe());
  // As in PyTorch: pieces of ceil(n / chunks), so there may be fewer than `chunks` of them.
  const int64_t n = x.size(dim);
  const int64_t size = (n + chunks - 1) / chunks;
  return split(x, size == 0 ? int64_t{1} : size, dim);
}

}  // namespace kirzl
