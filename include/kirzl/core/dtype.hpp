// Element types of tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kirzl/core/half.hpp"

namespace kirzl {

/// Element type of a Tensor.
enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, u16 };

/// Bytes per element.
constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::f32:
    case DType::i32: return 4;
    case DType::bf16:
    case DType::f16:
    case DType::u16: return 2;
    case DType::u8: return 1;
  }
  return 0;
}

/// True for f32, f64, bf16, f16.
constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

/// "f32", "bf16", ...
const char* dtype_name(DType t);
/// Parses a dtype_name(); throws Error{InvalidArgument} for an unknown name.
DType dtype_from_name(const std::string& name);

/// The DType of a C++ element type: dtype_of<float> == DType::f32.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::f64; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::bf16; };
template <> struct DTypeOf<Half> { static constexpr DType value = DType::f16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::i64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::u16; };
template <typename T> inline constexpr DType dtype_of = DTypeOf<T>::value;

/// The type a kernel computes in for elements of T: float for the 16-bit floats, else T.
template <typename T> struct AccType { using type = T; };
template <> struct AccType<BFloat16> { using type = float; };
template <> struct AccType<Half> { using type = float; };
template <typename T> using acc_t = typename AccType<T>::type;

/// Promotion for binary ops: the wider float wins; float beats int; wider int beats narrower.
DType promote_types(DType a, DType b);

}  // namespace kirzl
