// Internal: Philox4x32-10 on the device, word for word the host's Generator::philox.
#pragma once

#include <cstdint>

namespace kirzl::kernels::cuda {

struct PhiloxOut {
  uint32_t w[4];
};

/// Philox4x32-10 (Salmon et al., SC'11) of counter (ctr, subsequence) under key `seed`; the same
/// rounds, constants and word order as kirzl::Generator::philox (src/core/generator.cpp).
__device__ __forceinline__ PhiloxOut philox(uint64_t seed, uint64_t ctr, uint64_t subsequence = 0) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32);
  uint32_t c2 = static_cast<uint32_t>(subsequence), c3 = static_cast<uint32_t>(subsequence >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kM0, c0), lo0 = kM0 * c0;
    const uint32_t hi1 = __umulhi(kM1, c2), lo1 = kM1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

/// Uniform float in [0, 1) from the top 24 bits, as kirzl::uint_to_unit_float (exact in f32).
__device__ __forceinline__ float unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

}  // namespace kirzl::kernels::cuda
