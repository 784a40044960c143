// Elementwise ops with numpy broadcasting. All are differentiable with respect to floating inputs.
// Binary ops promote dtypes (promote_types); inputs must be on one device. Results are new
// contiguous tensors.
#pragma once

#include <limits>

#include "kirzl/tensor.hpp"

namespace kirzl {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
/// b - a, b / a.
Tensor rsub(const Tensor& a, double b);
Tensor rdiv(const Tensor& a, double b);
/// Elementwise maximum / minimum (gradient goes to the larger / smaller; split evenly on ties).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor abs(const Tensor& x);
/// x ** exponent.
Tensor pow(const Tensor& x, double exponent);
Tensor relu(const Tensor& x);

/// GELU: exact (erf) form, or the tanh approximation used by GPT-2.
enum class GeluApproximation { None, Tanh };
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::None);

/// Limits each element to [min, max]; the gradient is zero where clamped.
Tensor clamp(const Tensor& x, double min = -std::numeric_limits<double>::infinity(),
             double max = std::numeric_limits<double>::infinity());
/// cond ? a : b, broadcasting all three. `cond` is u8 (nonzero = true) or any dtype (nonzero).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// x with `value` where mask is nonzero (mask broadcast to x's shape).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

/// Comparisons: u8 tensors of 0/1 (not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& x);

}  // namespace kirzl
