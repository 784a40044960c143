// Internal: unary elementwise kernels, their fused gradients, and where().
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Abs, Relu, Gelu, GeluTanh, Pow, Clamp };

/// Scalar parameters: Pow uses p0 as the exponent; Clamp uses [p0, p1].
struct UnaryArgs {
  double p0 = 0;
  double p1 = 0;
};

/// True for the ops that also accept integer dtypes (Neg, Abs, Relu, Clamp).
bool unary_supports_integers(UnaryOp op);

/// out = op(x); out is contiguous with x's shape and dtype, x may be strided.
void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args = {});

/// Which tensor unary_backward needs: the input x, or the result y = op(x).
enum class UnarySaved { Input, Result };
UnarySaved unary_backward_saves(UnaryOp op);

/// gx = g * op'(x) for floating dtypes, where `saved` is x or y as unary_backward_saves(op)
/// says. gx is contiguous; g and saved have gx's shape and dtype (any strides).
void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args = {});

/// out = cond ? a : b, all broadcast to out's shape. cond is u8 (nonzero = true); a, b and out
/// share one dtype.
void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

namespace cpu {
void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args);
void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args);
void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cpu

/// CUDA kernels (src/kernels/cuda/unary.cu), issued on the current stream of out's device.
namespace cuda {
void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args);
void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args);
void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cuda

}  // namespace kirzl::kernels
