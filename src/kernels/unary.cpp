// Device dispatch for unary elementwise kernels and where().
#include "kernels/unary.h"

namespace kirzl::kernels {

bool unary_supports_integers(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Relu || op == UnaryOp::Clamp;
}

UnarySaved unary_backward_saves(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp:
    case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Relu: return UnarySaved::Result;
    default: return UnarySaved::Input;
  }
}

void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args) {
  if (out.device().is_cpu()) return cpu::unary(op, out, x, args);
  return cuda::unary(op, out, x, args);
}

void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args) {
  if (gx.device().is_cpu()) return cpu::unary_backward(op, gx, g, saved, args);
  return cuda::unary_backward(op, gx, g, saved, args);
}

void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (out.device().is_cpu()) return cpu::where(out, cond, a, b);
  return cuda::where(out, cond, a, b);
}

}  // namespace kirzl::kernels
