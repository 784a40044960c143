// Internal: runs a templated lambda for the C++ type of a runtime DType.
//   dispatch_floating(t, "exp", [&]<typename T>() { ... T ... });
#pragma once

#include <cstdint>

#include "kirzl/core/dtype.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl::kernels {

template <typename F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::bf16: return f.template operator()<BFloat16>();
    case DType::f16: return f.template operator()<Half>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::u8: return f.template operator()<uint8_t>();
    case DType::u16: return f.template operator()<uint16_t>();
  }
  KIRZL_FAIL(ErrorCode::Internal, op, ": unknown dtype");
}

template <typename F>
decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::bf16: return f.template operator()<BFloat16>();
    case DType::f16: return f.template operator()<Half>();
    default: break;
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
}

template <typename F>
decltype(auto) dispatch_integral(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::u8: return f.template operator()<uint8_t>();
    case DType::u16: return f.template operator()<uint16_t>();
    default: break;
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": expected an integer dtype (i32, i64, u8, u16), got ", dtype_name(t));
}

/// Converts any element type to/from double for generic (slow-path) code.
template <typename T> inline double to_double(T v) { return static_cast<double>(static_cast<acc_t<T>>(v)); }
template <typename T> inline T from_double(double v) {
  if constexpr (std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

}  // namespace kirzl::kernels
