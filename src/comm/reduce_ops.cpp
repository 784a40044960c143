// Element-wise reduction kernels. See reduce_ops.h.
#include "comm/reduce_ops.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace kirzl::comm::detail {

namespace {

// The type integer Sum/Prod are computed in: unsigned and at least 32 bits, so that overflow wraps
// instead of being undefined (and u8/u16 are not promoted to a signed int).
template <typename T> struct Wrap { using type = T; };
template <> struct Wrap<int32_t> { using type = uint32_t; };
template <> struct Wrap<int64_t> { using type = uint64_t; };
template <> struct Wrap<uint8_t> { using type = uint32_t; };
template <> struct Wrap<uint16_t> { using type = uint32_t; };

template <typename T>
inline T combine(T a, T b, ReduceOp op) {
  using W = typename Wrap<T>::type;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return static_cast<T>(static_cast<W>(a) + static_cast<W>(b));
    case ReduceOp::Prod: return static_cast<T>(static_cast<W>(a) * static_cast<W>(b));
    case ReduceOp::Min: return b < a ? b : a;
    case ReduceOp::Max: return a < b ? b : a;
  }
  return a;
}

// Loops with the op hoisted out so the compiler can vectorise them.
template <typename T>
void combine_loop(T* __restrict acc, const T* __restrict src, int64_t n, ReduceOp op) {
  using W = typename Wrap<T>::type;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      for (int64_t i = 0; i < n; ++i) acc[i] = static_cast<T>(static_cast<W>(acc[i]) + static_cast<W>(src[i]));
      return;
    case ReduceOp::Prod:
      for (int64_t i = 0; i < n; ++i) acc[i] = static_cast<T>(static_cast<W>(acc[i]) * static_cast<W>(src[i]));
      return;
    case ReduceOp::Min:
      for (int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], src[i], ReduceOp::Min);
      return;
    case ReduceOp::Max:
      for (int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], src[i], ReduceOp::Max);
      return;
  }
}

template <typename T>
void divide_loop(T* p, int64_t n, int64_t divisor) {
  if constexpr (std::is_floating_point_v<T>) {
    const T d = static_cast<T>(divisor);
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] / d;
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(static_cast<int64_t>(p[i]) / divisor);
  }
}

template <typename T>
void reduce_native(void* dst, const void* const* srcs, int nsrc, int64_t count, ReduceOp op) {
  T* d = static_cast<T*>(dst);
  if (dst != srcs[0]) std::memcpy(d, srcs[0], static_cast<size_t>(count) * sizeof(T));
  for (int j = 1; j < nsrc; ++j) combine_loop(d, static_cast<const T*>(srcs[j]), count, op);
  if (op == ReduceOp::Avg) divide_loop(d, count, nsrc);
}

template <typename H>
void reduce_half(void* dst, const void* const* srcs, int nsrc, int64_t count, ReduceOp op) {
  constexpr int64_t kBlock = 2048;
  float acc[kBlock], tmp[kBlock];
  for (int64_t lo = 0; lo < count; lo += kBlock) {
    const int64_t n = std::min(kBlock, count - lo);
    const H* s0 = static_cast<const H*>(srcs[0]) + lo;
    for (int64_t i = 0; i < n; ++i) acc[i] = static_cast<float>(s0[i]);
    for (int j = 1; j < nsrc; ++j) {
      const H* s = static_cast<const H*>(srcs[j]) + lo;
      for (int64_t i = 0; i < n; ++i) tmp[i] = static_cast<float>(s[i]);
      combine_loop(acc, tmp, n, op);
    }
    if (op == ReduceOp::Avg) divide_loop(acc, n, nsrc);
    H* d = static_cast<H*>(dst) + lo;
    for (int64_t i = 0; i < n; ++i) d[i] = H(acc[i]);
  }
}

template <typename H>
void reduce_into_half(void* acc, const void* src, int64_t count, ReduceOp op) {
  H* a = static_cast<H*>(acc);
  const H* s = static_cast<const H*>(src);
  for (int64_t i = 0; i < count; ++i) a[i] = H(combine(static_cast<float>(a[i]), static_cast<float>(s[i]), op));
}

}  // namespace

void reduce_sources(void* dst, const void* const* srcs, int nsrc, int64_t count, DType dtype, ReduceOp op) {
  if (count <= 0) return;
  switch (dtype) {
    case DType::f32: return reduce_native<float>(dst, srcs, nsrc, count, op);
    case DType::f64: return reduce_native<double>(dst, srcs, nsrc, count, op);
    case DType::i32: return reduce_native<int32_t>(dst, srcs, nsrc, count, op);
    case DType::i64: return reduce_native<int64_t>(dst, srcs, nsrc, count, op);
    case DType::u8: return reduce_native<uint8_t>(dst, srcs, nsrc, count, op);
    case DType::u16: return reduce_native<uint16_t>(dst, srcs, nsrc, count, op);
    case DType::bf16: return reduce_half<BFloat16>(dst, srcs, nsrc, count, op);
    case DType::f16: return reduce_half<Half>(dst, srcs, nsrc, count, op);
  }
}

void reduce_into(void* acc, const void* src, int64_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::f32: return combine_loop(static_cast<float*>(acc), static_cast<const float*>(src), count, op);
    case DType::f64: return combine_loop(static_cast<double*>(acc), static_cast<const double*>(src), count, op);
    case DType::i32: return combine_loop(static_cast<int32_t*>(acc), static_cast<const int32_t*>(src), count, op);
    case DType::i64: return combine_loop(static_cast<int64_t*>(acc), static_cast<const int64_t*>(src), count, op);
    case DType::u8: return combine_loop(static_cast<uint8_t*>(acc), static_cast<const uint8_t*>(src), count, op);
    case DType::u16: return combine_loop(static_cast<uint16_t*>(acc), static_cast<const uint16_t*>(src), count, op);
    case DType::bf16: return reduce_into_half<BFloat16>(acc, src, count, op);
    case DType::f16: return reduce_into_half<Half>(acc, src, count, op);
  }
}

void divide_by(void* data, int64_t count, DType dtype, int64_t divisor) {
  switch (dtype) {
    case DType::f32: return divide_loop(static_cast<float*>(data), count, divisor);
    case DType::f64: return divide_loop(static_cast<double*>(data), count, divisor);
    case DType::i32: return divide_loop(static_cast<int32_t*>(data), count, divisor);
    case DType::i64: return divide_loop(static_cast<int64_t*>(data), count, divisor);
    case DType::u8: return divide_loop(static_cast<uint8_t*>(data), count, divisor);
    case DType::u16: return divide_loop(static_cast<uint16_t*>(data), count, divisor);
    case DType::bf16: {
      auto* p = static_cast<BFloat16*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = BFloat16(static_cast<float>(p[i]) / static_cast<float>(divisor));
      return;
    }
    case DType::f16: {
      auto* p = static_cast<Half*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = Half(static_cast<float>(p[i]) / static_cast<float>(divisor));
      return;
    }
  }
}

void widen_to_f32(const void* src, DType dtype, float* dst, int64_t count) {
  if (dtype == DType::bf16) {
    const auto* s = static_cast<const BFloat16*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(s[i]);
  } else {
    const auto* s = static_cast<const Half*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(s[i]);
  }
}

void narrow_from_f32(const float* src, DType dtype, void* dst, int64_t count) {
  if (dtype == DType::bf16) {
    auto* d = static_cast<BFloat16*>(dst);
    for (int64_t i = 0; i < count; ++i) d[i] = BFloat16(src[i]);
  } else {
    auto* d = static_cast<Half*>(dst);
    for (int64_t i = 0; i < count; ++i) d[i] = Half(src[i]);
  }
}

}  // namespace kirzl::comm::detail
