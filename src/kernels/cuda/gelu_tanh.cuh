// Internal: the tanh form of GELU on the device, shared by the unary kernel (UnaryOp::GeluTanh)
// and the fused bias + GELU kernels (GPT-2's MLP).
//
// Note [16-bit tanh-GELU]: with tanhf, the forward of a bf16 tensor is bound by arithmetic, not
// memory: tanhf is a few dozen instructions, so at the H200's rate of about 10^12 16-bit elements
// a second the cores, not HBM, set the pace. For 16-bit storage the forward therefore uses
// 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), i.e. gelu(x) = x / (1 + exp(-2u)), with the fast exp2
// (MUFU) and the fast division: about ten instructions. Its relative error is that of the fast
// exp, at most 2 + 1.173 |2u| f32 ulps (a few near 0, about a hundred, 1e-5, as x nears -10): far
// below a 16-bit ulp, including the negative tail, where 1 + tanh(u) cancels and an approximate
// tanh (tanh.approx.f32, relative error 2^-10.9) would lose most digits of the small result. Where
// 1 + exp(-2u) exceeds 2^126 (x below about -10.0; exp(-2u) is inf below about -10.06) the fast
// division gives -0 instead of a number of magnitude below about 1.2e-37. f32 and
// f64 keep tanh, so that they match the CPU reference to a few ulps. The backward keeps tanh for
// every type: its 1 - t^2 is what the CPU computes.
#pragma once

#include "kernels/cuda/common.cuh"

namespace kirzl::kernels::cuda {

inline constexpr double kGeluSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
inline constexpr double kGeluCubic = 0.044715;

/// u = sqrt(2/pi) (x + 0.044715 x^3), the argument of tanh in the tanh form of GELU.
template <typename A> __device__ __forceinline__ A gelu_tanh_arg(A x) {
  return A(kGeluSqrt2OverPi) * (x + A(kGeluCubic) * x * x * x);
}

/// GELU (tanh form) of x in the accumulation type of storage type T (Note [16-bit tanh-GELU]).
template <typename T> __device__ __forceinline__ dacc_t<T> gelu_tanh_forward(dacc_t<T> x) {
  using A = dacc_t<T>;
  if constexpr (sizeof(T) == 2) {
    return __fdividef(x, 1.0f + __expf(-2.0f * gelu_tanh_arg(x)));
  } else {
    return A(0.5) * x * (A(1) + tanh(gelu_tanh_arg(x)));
  }
}

/// d gelu / dx (tanh form), in the accumulation type A, accurate tanh for every type.
template <typename A> __device__ __forceinline__ A gelu_tanh_derivative(A x) {
  const A x2 = x * x;
  const A t = tanh(A(kGeluSqrt2OverPi) * (x + A(kGeluCubic) * x2 * x));
  const A du = A(kGeluSqrt2OverPi) * (A(1) + A(3 * kGeluCubic) * x2);
  return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * du;
}

}  // namespace kirzl::kernels::cuda
