// Internal: sum, dot product and max of contiguous rows, written so that they vectorise.
//
// A plain `s += p[i]` loop is one serial dependency chain (no reassociation without
// -ffast-math), so it runs at the add latency and never vectorises. Eight lanes combined in a
// fixed order vectorise and stay deterministic: the result depends only on n, not on threads.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

#include "kernels/cpu/vec_exp.h"

namespace kirzl::kernels::cpu {

template <typename A>
A lane_sum(const A* p, int64_t n) {
  A acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
  A tail = 0;
  for (; i < n; ++i) tail += p[i];
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
}

/// The dot product of x and y, in lanes as lane_sum.
template <typename A>
A lane_dot(const A* x, const A* y, int64_t n) {
  A acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k] * y[i + k];
  A tail = 0;
  for (; i < n; ++i) tail += x[i] * y[i];
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
}

// Float max through an order-preserving map to int32 (negative floats flip their magnitude
// bits): integer max vectorises, a float compare-select does not under -ftrapping-math.
inline int32_t float_order_key(float x) {
  const int32_t b = std::bit_cast<int32_t>(x);
  return b ^ ((b >> 31) & 0x7fffffff);
}

/// Largest element (-inf for an empty row). For float, a NaN with the sign bit clear compares
/// above +inf and is returned; callers see NaN rows again through exp(x - max) either way.
template <typename A>
A lane_max(const A* p, int64_t n) {
  if constexpr (sizeof(A) == 4) {
    const int32_t lowest = float_order_key(-INFINITY);
    int32_t acc[8] = {lowest, lowest, lowest, lowest, lowest, lowest, lowest, lowest};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) {
        const int32_t v = float_order_key(p[i + k]);
        acc[k] = v > acc[k] ? v : acc[k];
      }
    int32_t m = lowest;
    for (; i < n; ++i) m = std::max(m, float_order_key(p[i]));
    for (int k = 0; k < 8; ++k) m = std::max(m, acc[k]);
    return std::bit_cast<A>(m ^ ((m >> 31) & 0x7fffffff));
  } else {
    A m = -static_cast<A>(INFINITY);
    for (int64_t i = 0; i < n; ++i) m = p[i] > m ? p[i] : m;
    return m;
  }
}

}  // namespace kirzl::kernels::cpu
