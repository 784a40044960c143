// where() and masked_fill(): select between tensors by a condition, with broadcasting.
#include "kernels/unary.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// The condition as u8 0/1 (any nonzero value is true).
Tensor as_mask(const Tensor& cond) {
  Tensor c = cond.detach();
  if (c.dtype() == DType::u8) return c;
  return ne(c, scalar_tensor(0.0, options_of(c)));
}

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a0, const Tensor& b0) {
  ops::check_defined("where", cond, "cond");
  ops::check_defined("where", a0, "a");
  ops::check_defined("where", b0, "b");
  KIRZL_CHECK(cond.device() == a0.device() && a0.device() == b0.device(),
              "where: expected all tensors on one device, got ", ops::describe_all({{"cond", &cond}, {"a", &a0}, {"b", &b0}}));
  Shape shape;
  try {
    shape = broadcast_shapes(broadcast_shapes(cond.shape(), a0.shape(), "where"), b0.shape(), "where");
  } catch (const Error&) {
    KIRZL_FAIL(ErrorCode::InvalidArgument, "where: cond, a and b cannot be broadcast together (",
               ops::describe_all({{"cond", &cond}, {"a", &a0}, {"b", &b0}}), ")");
  }
  DType dt = promote_types(a0.dtype(), b0.dtype());
  Tensor a = a0.to(dt), b = b0.to(dt);
  Tensor mask = as_mask(cond);
  Tensor out = empty(shape, {.dtype = dt, .device = a.device()});
  kernels::where(out, mask, a, b);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  Shape sa = a.shape(), sb = b.shape();
  autograd::record("where", out, {a, b}, [mask, sa, sb](const autograd::GradContext& c) {
    const Tensor& g = c.grad();
    Tensor zero = scalar_tensor(0.0, options_of(g));
    Tensor ga, gb;
    if (c.needs(0)) ga = sum_to(where(mask, g, zero), sa);
    if (c.needs(1)) gb = sum_to(where(mask, zero, g), sb);
    return std::vector<Tensor>{ga, gb};
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  ops::check_defined("masked_fill", x, "x");
  ops::check_defined("masked_fill", mask, "mask");
  bool ok = mask.dim() <= x.dim();
  for (int64_t i = 1; ok && i <= mask.dim(); ++i)
    ok = mask.size(-i) == 1 || mask.size(-i) == x.size(-i);
  KIRZL_CHECK(ok, "masked_fill: mask ", mask.describe(), " cannot be broadcast to the shape of x ", x.describe());
  return where(mask, scalar_tensor(value, options_of(x)), x);
}

}  // namespace kirzl
