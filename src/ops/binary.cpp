// Binary elementwise ops with broadcasting and type promotion, and their gradients.
#include <cmath>

#include "kernels/binary.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

using kernels::BinaryOp;

namespace {

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
  }
  return "binary";
}

// Checks, promotes and broadcasts; returns the output (without autograd) and the promoted inputs.
Tensor compute(BinaryOp op, const Tensor& a0, const Tensor& b0, Tensor& a, Tensor& b) {
  const char* name = op_name(op);
  ops::check_defined(name, a0, "a");
  ops::check_defined(name, b0, "b");
  KIRZL_CHECK(a0.device() == b0.device(), name, ": expected both tensors on one device, got a ", a0.describe(), " and b ",
              b0.describe());
  Shape shape = broadcast_shapes(a0.shape(), b0.shape(), name);
  DType dt = promote_types(a0.dtype(), b0.dtype());
  a = a0.to(dt);
  b = b0.to(dt);
  bool comparison = op >= BinaryOp::Eq;
  Tensor out = empty(shape, {.dtype = comparison ? DType::u8 : dt, .device = a0.device()});
  kernels::binary(op, out, a, b);
  return out;
}

Tensor arithmetic(BinaryOp op, const Tensor& a0, const Tensor& b0) {
  Tensor a, b;
  Tensor out = compute(op, a0, b0, a, b);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  Shape sa = a.shape(), sb = b.shape();
  Tensor ad = a.detach(), bd = b.detach();
  switch (op) {
    case BinaryOp::Add:
      autograd::record("add", out, {a, b}, [sa, sb](const autograd::GradContext& c) {
        return std::vector<Tensor>{c.needs(0) ? sum_to(c.grad(), sa) : Tensor(), c.needs(1) ? sum_to(c.grad(), sb) : Tensor()};
      });
      break;
    case BinaryOp::Sub:
      autograd::record("sub", out, {a, b}, [sa, sb](const autograd::GradContext& c) {
        return std::vector<Tensor>{c.needs(0) ? sum_to(c.grad(), sa) : Tensor(),
                                   c.needs(1) ? sum_to(neg(c.grad()), sb) : Tensor()};
      });
      break;
    case BinaryOp::Mul:
      autograd::record("mul", out, {a, b}, [sa, sb, ad, bd](const autograd::GradContext& c) {
        return std::vector<Tensor>{c.needs(0) ? sum_to(mul(c.grad(), bd), sa) : Tensor(),
                                   c.needs(1) ? sum_to(mul(c.grad(), ad), sb) : Tensor()};
      });
      break;
    case BinaryOp::Div:
      autograd::record("div", out, {a, b}, [sa, sb, ad, bd](const autograd::GradContext& c) {
        Tensor ga, gb;
        if (c.needs(0)) ga = sum_to(div(c.grad(), bd), sa);
        if (c.needs(1)) gb = sum_to(neg(div(mul(c.grad(), ad), mul(bd, bd))), sb);
        return std::vector<Tensor>{ga, gb};
      });
      break;
    case BinaryOp::Maximum:
    case BinaryOp::Minimum: {
      bool is_max = op == BinaryOp::Maximum;
      autograd::record(is_max ? "maximum" : "minimum", out, {a, b}, [sa, sb, ad, bd, is_max](const autograd::GradContext& c) {
        // Gradient to the selected input; split evenly where a == b.
        Tensor pick_a = (is_max ? gt(ad, bd) : lt(ad, bd)).to(c.grad().dtype());
        Tensor tie = eq(ad, bd).to(c.grad().dtype());
        Tensor wa = add(pick_a, mul(tie, 0.5));
        Tensor wb = rsub(wa, 1.0);
        return std::vector<Tensor>{c.needs(0) ? sum_to(mul(c.grad(), wa), sa) : Tensor(),
                                   c.needs(1) ? sum_to(mul(c.grad(), wb), sb) : Tensor()};
      });
      break;
    }
    default: break;
  }
  return out;
}

// A scalar operand as a 0-d tensor of a's dtype (or f32 when a is integral and the scalar is not).
Tensor scalar_like(const Tensor& a, double v, const char* op) {
  ops::check_defined(op, a, "a");
  DType dt = a.dtype();
  if (!is_floating(dt) && (v != std::floor(v) || !std::isfinite(v))) dt = DType::f32;
  return scalar_tensor(v, {.dtype = dt, .device = a.device()});
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return arithmetic(BinaryOp::Minimum, a, b); }
Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b, "add")); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b, "sub")); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b, "mul")); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b, "div")); }
Tensor rsub(const Tensor& a, double b) { return sub(scalar_like(a, b, "rsub"), a); }
Tensor rdiv(const Tensor& a, double b) { return div(scalar_like(a, b, "rdiv"), a); }

namespace {
Tensor comparison(BinaryOp op, const Tensor& a0, const Tensor& b0) {
  Tensor a, b;
  return compute(op, a0.detach(), b0.detach(), a, b);
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::Ge, a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return rsub(b, a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return rdiv(b, a); }
Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace kirzl
