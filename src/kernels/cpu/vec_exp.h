// Internal: an exp for float that the compiler can vectorise.
//
// Note [vec_exp]: std::exp is an opaque libm call, so loops over it stay scalar (without
// -ffast-math); softmax and cross-entropy are then bound by exp, not memory. vec_exp uses only
// arithmetic, compares and bit casts: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, and
// Cephes' degree-5 polynomial for e^r (a few ulp). Inputs below -86 (e^-86 ~ 4e-38, near the
// smallest normal float) give exactly 0, so masked -inf entries stay 0; above 88.7 give +inf;
// NaN stays NaN.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/mul_add.h"

namespace kirzl::kernels::cpu {

// c ? a : b through integer masks: GCC will not if-convert float selects under the default
// -ftrapping-math, and a branch in the loop body stops vectorisation.
inline float select_bits(bool c, float a, float b) {
  const int32_t m = -static_cast<int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

inline float vec_exp(float x) {
  constexpr float kHi = 88.7228391f, kLo = -86.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const bool over = x > kHi, under = x < kLo;
  const float xc = select_bits(over, kHi, select_bits(under, kLo, x));
  // Every multiply-add written as one (Note [explicit fma]): the same bits in any loop.
  const float n = mul_add(xc, kLog2e, kRound) - kRound;
  const float r = mul_add(-n, kLn2Lo, mul_add(-n, kLn2Hi, xc));
  float p = 1.9875691500e-4f;
  p = mul_add(p, r, 1.3981999507e-3f);
  p = mul_add(p, r, 8.3334519073e-3f);
  p = mul_add(p, r, 4.1665795894e-2f);
  p = mul_add(p, r, 1.6666665459e-1f);
  p = mul_add(p, r, 5.0000001201e-1f);
  p = mul_add(p * r, r, r) + 1.0f;
  // 2^n built in the exponent field as 2^(n-1) * 2: n is in [-124, 128] and 2^128 has no field.
  const int32_t ni = static_cast<int32_t>(n);
  const float y = p * std::bit_cast<float>((ni - 1 + 127) << 23) * 2.0f;
  return select_bits(under, 0.0f, select_bits(over, INFINITY, y));
}

inline double vec_exp(double x) { return std::exp(x); }

}  // namespace kirzl::kernels::cpu
