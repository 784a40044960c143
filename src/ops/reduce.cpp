// Reductions: sum, mean (and sum_to, the adjoint of broadcasting).
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
  return div(sum(x, dims, keepdim), static_cast<double>(count));
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
