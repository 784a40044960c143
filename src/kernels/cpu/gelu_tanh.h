// Internal: GPT-2's tanh-approximated GELU and its derivative on the CPU, in a form the compiler
// vectorises; shared by the unary op (gelu(x, Tanh)) and the fused bias_gelu, which must agree.
//
// Note [cpu tanh-GELU]: with u = sqrt(2/pi) (x + 0.044715 x^3), 1 + tanh(u) = 2 sigmoid(2u), so
//   gelu(x)  = x * s,                      s = 1 / (1 + e^(-2u))
//   gelu'(x) = s + 2 x s (1 - s) du/dx,    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// (that is, x / (1 + e^(-2u)) and the same derivative as the tanh form's, rearranged)
// exactly. std::tanh is an opaque libm call that keeps the loop scalar (about 15 ns per element
// per pass on the development machine); e^(-2u) through vec_exp (Note [vec_exp]) is arithmetic
// only: forward + backward 24-32x faster (bench_elementwise, BM_GeluTanhFwdBwd beside the std::tanh
// loops), and the CPU GPT example about 1.4x the tokens/s (bench/RESULTS.md, 2026-12-07 12:15). It is also more accurate for negative x, where
// 1 + tanh(u) cancels: x * s keeps a few ulp of relative error there. For large |u| the limits
// are exact: e^(-2u) = inf gives s = 0 (gelu = -0 for x < 0, gelu' = 0), e^(-2u) = 0 gives s = 1.
// NaN propagates. f64 uses std::exp (vec_exp's double overload).
#pragma once

#include <limits>

#include "kernels/cpu/vec_exp.h"

namespace kirzl::kernels::cpu {

inline constexpr double kGeluTanhScale = 0.79788456080286535588;  // sqrt(2/pi)
inline constexpr double kGeluTanhCubic = 0.044715;

// e^(-2u) for GELU's u(x), in the accumulation type A (float or double).
template <typename A> inline A gelu_tanh_exp(A x) {
  const A u = A(kGeluTanhScale) * (x + A(kGeluTanhCubic) * x * x * x);
  return vec_exp(A(-2) * u);
}

// c ? a : b, branch-free for float (select_bits keeps the loop vectorisable).
inline float gelu_pick(bool c, float a, float b) { return select_bits(c, a, b); }
inline double gelu_pick(bool c, double a, double b) { return c ? a : b; }

template <typename A> inline A gelu_tanh(A x) { return x / (A(1) + gelu_tanh_exp(x)); }

// 1 - s is computed as e s (= e / (1 + e)), not by subtracting: where s is near 1 (x > 2) the
// difference would carry an absolute error of an ulp of 1, which 2 x du (35 at x = 5) magnifies.
template <typename A> inline A gelu_tanh_grad(A x) {
  const A e = gelu_tanh_exp(x);
  const A s = A(1) / (A(1) + e);
  const A q = gelu_pick(e > std::numeric_limits<A>::max(), A(0), e * s);  // 1 - s; inf * 0 would be NaN
  const A du = A(kGeluTanhScale) * (A(1) + A(3 * kGeluTanhCubic) * x * x);
  return s + A(2) * x * s * q * du;
}

}  // namespace kirzl::kernels::cpu
