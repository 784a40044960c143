// Reductions: sum, mean, var, max/min, argmax/argmin (and sum_to, the adjoint of broadcasting).
#include "kernels/reduce.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Flags per dim of x; empty dims = all. Throws on out-of-range or repeated dims.
std::vector<bool> reduce_mask(const char* op, const Tensor& x, const Dims& dims) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = ops::wrap_dim(op, d, x.dim(), x);
    if (x.dim() == 0) continue;
    KIRZL_CHECK(!mask[w], op, ": dimension ", d, " appears twice in the reduction dims");
    mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!mask[d]) s.push_back(x.size(d));
    else if (keepdim) s.push_back(1);
  }
  return s;
}

// Inserts size-1 dims where `mask` reduced, so a reduced gradient broadcasts back over x.
Tensor unsqueeze_reduced(const Tensor& g, const Shape& x_shape, const std::vector<bool>& mask) {
  Shape s;
  for (int64_t d = 0; d < x_shape.size(); ++d) s.push_back(mask[d] ? 1 : x_shape[d]);
  return g.reshape(s);
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
  ops::check_defined("sum", x, "x");
  std::vector<bool> mask = reduce_mask("sum", x, dims);
  DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor src = x.dtype() == out_dtype ? x : x.detach().to(out_dtype);
  Tensor out = empty(reduced_shape(x, mask, false), {.dtype = out_dtype, .device = x.device()});
  kernels::sum(out, src, mask);
  if (keepdim) out = out.reshape(reduced_shape(x, mask, true));
  Shape xs = x.shape();
  autograd::record("sum", out, {x}, [xs, mask](const autograd::GradContext& c) {
    return std::vector<Tensor>{unsqueeze_reduced(c.grad(), xs, mask).expand(xs).contiguous()};
  });
  return out;
}

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  ops::check_floating("mean", x, "x");
  std::vector<bool> mask = reduce_mask("mean", x, dims);
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.size(d);
  // 16-bit floats are summed and divided in f32: in f16 both the sum and the count overflow past
  // 65504 (the count becomes inf and every mean 0), though the mean itself is in range.
  if (x.dtype() == DType::f16 || x.dtype() == DType::bf16)
    return div(sum(x.to(DType::f32), dims, keepdim), static_cast<double>(count)).to(x.dtype());
  return div(sum(x, dims, keepdim), static_cast<double>(count));
}

Tensor var(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  ops::check_floating("var", x, "x");
  KIRZL_CHECK(correction >= 0, "var: expected correction >= 0, got ", correction, " for x ", x.describe());
  std::vector<bool> mask = reduce_mask("var", x, dims);
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.size(d);
  // Two passes (subtract the mean first) for accuracy; with count <= correction the result is
  // inf or NaN, as in PyTorch.
  Tensor centered = sub(x, mean(x, dims, true));
  return div(sum(mul(centered, centered), dims, keepdim), static_cast<double>(count - correction));
}

namespace {

// Values and/or first indices of the extremum along `dim`; records the gradient of the values.
void extremum(const char* op, bool is_max, const Tensor& x, int64_t dim0, bool keepdim, Tensor* values, Tensor* indices) {
  ops::check_defined(op, x, "x");
  int64_t dim = ops::wrap_dim(op, dim0, x.dim(), x);
  Tensor src = x.dim() == 0 ? x.detach().reshape({1}) : x.detach().contiguous();
  KIRZL_CHECK(src.size(dim) > 0, op, ": cannot reduce over dimension ", dim0, " of size 0 of ", x.describe(),
              " (the result of an empty reduction is undefined)");
  Shape kept = src.shape();
  kept.erase(dim);
  Tensor v = values ? empty(kept, options_of(x)) : Tensor();
  Tensor idx = empty(kept, {.dtype = DType::i64, .device = x.device()});
  kernels::extremum(is_max, v, idx, src, dim);
  Shape keep_shape = x.shape();
  if (x.dim() > 0) keep_shape[dim] = 1;
  if (keepdim) {
    if (v.defined()) v = v.reshape(keep_shape);
    idx = idx.reshape(keep_shape);
  } else if (x.dim() == 0) {
    if (v.defined()) v = v.reshape({});
    idx = idx.reshape({});
  }
  if (values) {
    Shape xs = x.shape();
    Tensor idx_keep = idx.reshape(keep_shape);
    autograd::record(op, v, {x}, [xs, dim, keep_shape, idx_keep](const autograd::GradContext& c) {
      // The gradient goes to the first extremal element: a one-hot mask along `dim`.
      Tensor g = c.grad().reshape(keep_shape);
      if (xs.size() == 0) return std::vector<Tensor>{g};
      Shape pos_shape;
      pos_shape.resize(xs.size(), 1);
      pos_shape[dim] = xs[dim];
      Tensor pos = arange(xs[dim], {.dtype = DType::i64, .device = g.device()}).reshape(pos_shape);
      return std::vector<Tensor>{where(eq(pos, idx_keep), g, scalar_tensor(0.0, options_of(g)))};
    });
    *values = v;
  }
  if (indices) *indices = idx;
}

Tensor extremum_all(const char* op, bool is_max, const Tensor& x) {
  ops::check_defined(op, x, "x");
  KIRZL_CHECK(x.numel() > 0, op, ": cannot reduce an empty tensor ", x.describe(), " (the result is undefined)");
  Tensor v;
  extremum(op, is_max, x.reshape({-1}), 0, false, &v, nullptr);
  return v;
}

}  // namespace

Tensor max(const Tensor& x) { return extremum_all("max", true, x); }
Tensor min(const Tensor& x) { return extremum_all("min", false, x); }

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor v;
  extremum("max", true, x, dim, keepdim, &v, nullptr);
  return v;
}

Tensor min(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor v;
  extremum("min", false, x, dim, keepdim, &v, nullptr);
  return v;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor i;
  extremum("argmax", true, x, dim, keepdim, nullptr, &i);
  return i;
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor i;
  extremum("argmin", false, x, dim, keepdim, nullptr, &i);
  return i;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  KIRZL_CHECK(shape.size() <= x.dim(), "sum_to: cannot reduce ", x.describe(), " to ", shape.str());
  const int64_t lead = x.dim() - shape.size();
  Dims dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.size(d) != 1) {
      dims.push_back(d);
    } else {
      KIRZL_CHECK(shape[d - lead] == x.size(d), "sum_to: cannot reduce ", x.describe(), " to ", shape.str());
    }
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, true).reshape(shape);
}

}  // namespace kirzl
