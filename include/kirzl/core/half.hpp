// 16-bit floating-point storage types: BFloat16 and Half (IEEE binary16).
// Conversions from float round to nearest, ties to even; NaN stays NaN.
#pragma once

#include <bit>
#include <cstdint>

namespace kirzl {

/// bfloat16: the upper 16 bits of an IEEE float32. Arithmetic happens in float.
struct BFloat16 {
  uint16_t bits = 0;  ///< the raw encoding: sign, 8 exponent bits, 7 mantissa bits (0 is +0.0)
  BFloat16() = default;
  /// Rounds `f` to the nearest bfloat16 (ties to even); NaN stays NaN, ±inf stays ±inf, and values
  /// beyond bf16's largest finite value round to ±inf. Implicit, as a built-in float type.
  BFloat16(float f) : bits(from_float(f)) {}  // NOLINT: implicit like a built-in float type
  /// The exact float value (every bf16 is a float32 with 16 zero low bits); never rounds.
  operator float() const { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

  /// The encoding of `f` rounded to bfloat16, as the converting constructor rounds it.
  static uint16_t from_float(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>((u + rounding) >> 16);
  }
  /// The bfloat16 whose encoding is `b` (no conversion: e.g. the bits read from a file).
  static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

/// IEEE 754 binary16. Arithmetic happens in float.
struct Half {
  uint16_t bits = 0;  ///< the raw encoding: sign, 5 exponent bits, 10 mantissa bits (0 is +0.0)
  Half() = default;
  /// Rounds `f` to the nearest binary16 (ties to even), subnormals included; NaN stays NaN, and
  /// values whose rounded magnitude exceeds 65504 become ±inf. Implicit, as a built-in float type.
  Half(float f) : bits(from_float(f)) {}  // NOLINT
  /// The exact float value (every binary16, subnormals included, is representable); never rounds.
  operator float() const { return to_float(bits); }

  /// The encoding of `f` rounded to binary16, as the converting constructor rounds it.
  static uint16_t from_float(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow (after rounding) -> inf
    if (abs < 0x38800000u) {
      // Subnormal half (or zero): value = mant * 2^-24. Round the shifted mantissa to nearest even.
      if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest subnormal
      uint32_t exp = abs >> 23;
      uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
      uint32_t shift = 126 - exp;  // 14 + (112 - exp) + ... : aligns to 2^-24 units
      uint32_t q = mant >> shift;
      uint32_t rem = mant & ((1u << shift) - 1);
      uint32_t halfway = 1u << (shift - 1);
      if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
      return static_cast<uint16_t>(sign | q);
    }
    // Normal: rebias exponent (127 -> 15) and round 23 -> 10 mantissa bits to nearest even.
    uint32_t r = abs - 0x38000000u;  // exponent rebias by 112
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
  }
  /// The exact float value of the binary16 encoding `h` (what `operator float` returns).
  static float to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      if (mant == 0) return std::bit_cast<float>(sign);
      float f = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24
      return sign ? -f : f;
    }
    return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  }
  /// The Half whose encoding is `b` (no conversion: e.g. the bits read from a file).
  static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

}  // namespace kirzl
