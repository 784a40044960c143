// Internal: device helpers shared by the row-wise NN kernels (softmax, cross-entropy, layer norm):
// packed 16-byte loads/stores, warp/block reductions in a fixed order, online softmax statistics.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace kirzl::kernels::cuda {

/// Elements of T in one 16-byte transaction.
template <typename T> inline constexpr int kPack = 16 / sizeof(T) > 0 ? static_cast<int>(16 / sizeof(T)) : 1;

template <typename T, int N> struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

/// True when rows of `n` elements starting at `p` can all be read as 16-byte packs: the base is
/// 16-byte aligned and n is a multiple of the pack size (then every row start is aligned too).
template <typename T> inline bool pack_aligned(const void* p, int64_t n) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && n % kPack<T> == 0;
}

/// exp in the accumulation type: the fast intrinsic for 16-bit inputs (whose rounding dwarfs its
/// error), the accurate one for f32 and f64 so that those match the CPU reference tightly.
template <typename T> __device__ __forceinline__ dacc_t<T> acc_exp(dacc_t<T> v) {
  if constexpr (sizeof(T) == 2) return __expf(v);
  else return exp(v);
}

/// max that propagates NaN from either side (fmax would drop it).
template <typename A> __device__ __forceinline__ A nan_max(A a, A b) { return (a > b || a != a) ? a : b; }

template <typename A> __device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Sum over the block (blockDim.x a multiple of 32), returned to every thread. `smem` holds 32
/// values; the call begins with a barrier so that back-to-back calls may reuse it. Fixed order.
template <typename A> __device__ __forceinline__ A block_sum(A v, A* smem) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) smem[w] = v;
  __syncthreads();
  v = lane < nw ? smem[lane] : A(0);
  return warp_sum(v);
}

/// Online softmax statistics: the running maximum m and sum s of exp(x - m).
/// Note [online softmax]: one read pass gives both; merging two partial states rescales the sum
/// of the smaller maximum. An empty state is (-inf, 0); a NaN anywhere makes m or s NaN, so the
/// whole row comes out NaN as on the CPU.
template <typename A> struct Online {
  A m, s;
};

template <typename T> __device__ __forceinline__ void online_merge(Online<dacc_t<T>>& a, Online<dacc_t<T>> b) {
  using A = dacc_t<T>;
  const A mn = nan_max(a.m, b.m);
  if (mn == -INFINITY) return;  // both empty (or every element -inf so far)
  const A sa = a.m == -INFINITY ? A(0) : a.s * acc_exp<T>(a.m - mn);
  const A sb = b.m == -INFINITY ? A(0) : b.s * acc_exp<T>(b.m - mn);
  a.m = mn;
  a.s = sa + sb;
}

/// Adds `cnt` values (their NaN-propagating max `pm`) to a state with one rescale.
template <typename T, int N>
__device__ __forceinline__ void online_add(Online<dacc_t<T>>& st, const dacc_t<T> (&v)[N], int cnt, dacc_t<T> pm) {
  using A = dacc_t<T>;
  const A mn = nan_max(st.m, pm);
  if (mn == -INFINITY) return;
  A acc = st.m == -INFINITY ? A(0) : st.s * acc_exp<T>(st.m - mn);
  for (int i = 0; i < cnt; ++i) acc += acc_exp<T>(v[i] - mn);
  st.m = mn;
  st.s = acc;
}

template <typename T> __device__ __forceinline__ Online<dacc_t<T>> warp_online(Online<dacc_t<T>> st) {
  for (int o = 16; o > 0; o >>= 1) {
    Online<dacc_t<T>> other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o)};
    online_merge<T>(st, other);
  }
  return st;
}

/// Block-wide merge, returned to every thread; `smem` holds 32 states.
template <typename T>
__device__ __forceinline__ Online<dacc_t<T>> block_online(Online<dacc_t<T>> st, Online<dacc_t<T>>* smem) {
  st = warp_online<T>(st);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) smem[w] = st;
  __syncthreads();
  st = lane < nw ? smem[lane] : Online<dacc_t<T>>{-INFINITY, 0};
  return warp_online<T>(st);
}

/// Loads the `N` = kPack<T> elements at p (16-byte aligned) into the accumulation type.
template <typename T> __device__ __forceinline__ void load_pack(const T* p, dacc_t<T> (&v)[kPack<T>]) {
  const Pack<T, kPack<T>> pk = *reinterpret_cast<const Pack<T, kPack<T>>*>(p);
#pragma unroll
  for (int i = 0; i < kPack<T>; ++i) v[i] = load_acc(pk.v[i]);
}

template <typename T> __device__ __forceinline__ void store_pack(T* p, const dacc_t<T> (&v)[kPack<T>]) {
  Pack<T, kPack<T>> pk;
#pragma unroll
  for (int i = 0; i < kPack<T>; ++i) pk.v[i] = store_as<T>(v[i]);
  *reinterpret_cast<Pack<T, kPack<T>>*>(p) = pk;
}

/// Row-group reductions: a group is one warp (kWarp) or the whole block.
template <bool kWarp, typename A> __device__ __forceinline__ A group_sum(A v, A* smem) {
  if constexpr (kWarp) return warp_sum(v);
  else return block_sum(v, smem);
}
template <bool kWarp, typename T>
__device__ __forceinline__ Online<dacc_t<T>> group_online(Online<dacc_t<T>> st, Online<dacc_t<T>>* smem) {
  if constexpr (kWarp) return warp_online<T>(st);
  else return block_online<T>(st, smem);
}

/// Online statistics of one contiguous row, this thread's share: elements (or packs) tid,
/// tid + nth, ...
template <typename T>
__device__ __forceinline__ Online<dacc_t<T>> row_online(const T* row, int64_t n, bool vec, int tid, int nth) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  Online<A> st{-INFINITY, A(0)};
  if (vec) {
    for (int64_t k = tid; k < n / N; k += nth) {
      A v[N];
      load_pack(row + k * N, v);
      A pm = v[0];
#pragma unroll
      for (int i = 1; i < N; ++i) pm = nan_max(pm, v[i]);
      online_add<T, N>(st, v, N, pm);
    }
  } else {
    for (int64_t j = tid; j < n; j += nth) {
      const A v[1] = {load_acc(row[j])};
      online_add<T, 1>(st, v, 1, v[0]);
    }
  }
  return st;
}

/// Launch shape of the contiguous row kernels: a warp per row for short rows (8 rows per block),
/// a block per row otherwise, sized so that each thread handles a few 16-byte packs.
struct RowLaunch {
  bool warp;
  unsigned threads;
  unsigned blocks;
};
template <typename T> inline RowLaunch row_launch(int64_t rows, int64_t n) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 30;
  if (n <= 1024) {
    const int64_t blocks = (rows + 7) / 8;
    return {true, 256, static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxBlocks))};
  }
  const int64_t packs = (n + kPack<T> - 1) / kPack<T>;
  const int64_t want = ((packs + 3) / 4 + 31) / 32 * 32;
  return {false, static_cast<unsigned>(std::clamp<int64_t>(want, 128, 1024)),
          static_cast<unsigned>(std::clamp<int64_t>(rows, 1, kMaxBlocks))};
}

}  // namespace kirzl::kernels::cuda
