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

/// The DType of a C++ element type: dtype_of<float> == DType::f32. Defined only for the eight
/// element types below; any other T is a compile error (an incomplete type).
template <typename T> struct DTypeOf;
/// float (IEEE binary32) elements are DType::f32.
template <> struct DTypeOf<float> {
  static constexpr DType value = DType::f32;  ///< DType::f32
};
/// double (IEEE binary64) elements are DType::f64.
template <> struct DTypeOf<double> {
  static constexpr DType value = DType::f64;  ///< DType::f64
};
/// kirzl::BFloat16 elements are DType::bf16.
template <> struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::bf16;  ///< DType::bf16
};
/// kirzl::Half (IEEE binary16) elements are DType::f16.
template <> struct DTypeOf<Half> {
  static constexpr DType value = DType::f16;  ///< DType::f16
};
/// int32_t elements are DType::i32.
template <> struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;  ///< DType::i32
};
/// int64_t elements are DType::i64.
template <> struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;  ///< DType::i64
};
/// uint8_t elements are DType::u8.
template <> struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::u8;  ///< DType::u8
};
/// uint16_t elements are DType::u16.
template <> struct DTypeOf<uint16_t> {
  static constexpr DType value = DType::u16;  ///< DType::u16
};
/// Shorthand for DTypeOf<T>::value.
template <typename T> inline constexpr DType dtype_of = DTypeOf<T>::value;

/// The type a kernel computes in for elements of T: float for the 16-bit floats, else T.
template <typename T> struct AccType {
  using type = T;  ///< T itself: f32, f64 and the integer types compute in their own type
};
/// bf16 elements are computed in float: converted on load, rounded to bf16 on store.
template <> struct AccType<BFloat16> {
  using type = float;  ///< float
};
/// f16 elements are computed in float: converted on load, rounded to f16 on store.
template <> struct AccType<Half> {
  using type = float;  ///< float
};
/// Shorthand for AccType<T>::type.
template <typename T> using acc_t = typename AccType<T>::type;

/// Promotion for binary ops: the wider float wins; float beats int; wider int beats narrower.
DType promote_types(DType a, DType b);

}  // namespace kirzl
