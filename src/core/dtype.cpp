#include "kirzl/core/dtype.hpp"

#include "kirzl/core/error.hpp"

namespace kirzl {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
    case DType::u16: return "u16";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16})
    if (name == dtype_name(t)) return t;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "unknown dtype '", name, "' (expected one of f32, f64, bf16, f16, i32, i64, u8, u16)");
}

namespace {
// Rank among floats: f16 and bf16 are both "16-bit"; mixing them gives f32, as in PyTorch.
int float_rank(DType t) { return t == DType::f64 ? 3 : t == DType::f32 ? 2 : 1; }
int int_rank(DType t) {
  switch (t) {
    case DType::i64: return 4;
    case DType::i32: return 3;
    case DType::u16: return 2;
    default: return 1;
  }
}
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  bool fa = is_floating(a), fb = is_floating(b);
  if (fa && fb) {
    if (float_rank(a) == 1 && float_rank(b) == 1) return DType::f32;
    return float_rank(a) >= float_rank(b) ? a : b;
  }
  if (fa) return a;
  if (fb) return b;
  // u16 with i32 -> i32; u8/u16 -> u16; anything with i64 -> i64.
  return int_rank(a) >= int_rank(b) ? a : b;
}

}  // namespace kirzl
