// Internal: unary elementwise kernels, their fused gradients, and where().
#pragma once

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Abs, Relu, Gelu, GeluTanh, Pow, Clamp };

/// Scalar parameters: Pow uses p0 as the exponent; Clamp uses [p0, p1].
struct UnaryArgs {
  double p0 = 0;
  double p1 = 0;
};

/// True for the ops that also accept integer dtypes (Neg, Abs, Relu, Clamp).
inline bool unary_supports_integers(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Relu || op == UnaryOp::Clamp;
}

/// out = op(x); out is contiguous with x's shape and dtype, x may be strided.
KIRZL_DECLARE_KERNEL(unary, void (*)(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args));

/// Which tensor unary_backward needs: the input x, or the result y = op(x).
enum class UnarySaved { Input, Result };
inline UnarySaved unary_backward_saves(UnaryOp op) {
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

/// gx = g * op'(x) for floating dtypes, where `saved` is x or y as unary_backward_saves(op)
/// says. gx is contiguous; g and saved have gx's shape and dtype (any strides).
KIRZL_DECLARE_KERNEL(unary_backward, void (*)(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args));

/// out = cond ? a : b, all broadcast to out's shape. cond is u8 (nonzero = true); a, b and out
/// share one dtype.
KIRZL_DECLARE_KERNEL(where, void (*)(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b));
/// CUDA kernels (src/kernels/cuda/unary.cu) are issued on the current stream of out's device.

}  // namespace kirzl::kernels
