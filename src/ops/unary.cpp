// Unary elementwise ops and their gradients (fused backward kernels, see kernels/unary.h).
#include <cmath>

#include "kernels/unary.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "ops/op_utils.h"

namespace kirzl {

using kernels::UnaryArgs;
using kernels::UnaryOp;

namespace {

Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, const UnaryArgs& args = {}) {
  ops::check_defined(name, x, "x");
  if (!kernels::unary_supports_integers(op)) ops::check_floating(name, x, "x");
  Tensor out = empty(x.shape(), options_of(x));
  kernels::unary(op, out, x, args);
  if (!autograd::any_requires_grad({&x})) return out;
  Tensor saved = kernels::unary_backward_saves(op) == kernels::UnarySaved::Result ? out.detach() : x.detach();
  autograd::record(name, out, {x}, [op, saved, args](const autograd::GradContext& c) {
    Tensor g = c.grad().to(saved.dtype());
    Tensor gx = empty(saved.shape(), options_of(saved));
    kernels::unary_backward(op, gx, g, saved, args);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary_op("neg", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op("rsqrt", UnaryOp::Rsqrt, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::Sigmoid, x); }
Tensor abs(const Tensor& x) { return unary_op("abs", UnaryOp::Abs, x); }
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::Relu, x); }

Tensor pow(const Tensor& x, double exponent) {
  KIRZL_CHECK(!std::isnan(exponent), "pow: exponent is NaN (x ", x.defined() ? x.describe() : "undefined", ")");
  return unary_op("pow", UnaryOp::Pow, x, {.p0 = exponent});
}

Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  return approximate == GeluApproximation::Tanh ? unary_op("gelu", UnaryOp::GeluTanh, x) : unary_op("gelu", UnaryOp::Gelu, x);
}

Tensor clamp(const Tensor& x, double min, double max) {
  KIRZL_CHECK(!std::isnan(min) && !std::isnan(max), "clamp: bounds must not be NaN, got min ", min, " and max ", max);
  KIRZL_CHECK(min <= max, "clamp: expected min <= max, got min ", min, " and max ", max, " for x ",
              x.defined() ? x.describe() : "undefined");
  return unary_op("clamp", UnaryOp::Clamp, x, {.p0 = min, .p1 = max});
}

}  // namespace kirzl
