// Internal: the CUDA elementwise engine behind binary, unary, where, copy and fill.
//
// Note [cuda elementwise]: out[i] = f(in0[i], in1[i], ...) over tensors broadcast to out's shape.
// Two paths:
//  * fast: out contiguous, every input either contiguous with out's element count (it then has
//    out's layout, up to leading 1s) or a single element (scalar broadcast). Each thread of a
//    grid-stride loop handles VEC elements with one 16-byte access per operand (VEC = 16 / the
//    largest element size: 4 x f32, 8 x bf16). Pointers that are not 16-byte aligned are handled
//    by peeling a scalar head so that the body is aligned -- possible when every vector operand
//    is misaligned by the same number of elements; otherwise the strided path runs instead
//    (which, for contiguous operands, merges to one dimension and does no index division).
//  * strided: any strides and broadcasts. Size-1 dims are dropped and dims contiguous in every
//    operand merged (kernels::cpu::make_plan); per element, the linear index is split into
//    coordinates (one divmod per remaining dim but the outermost) and dotted with each operand's
//    strides. Index math is 32-bit when the element count and every operand's furthest offset
//    fit in int32, 64-bit otherwise.
// The functor receives and returns device element types (__nv_bfloat16, float, ...); 16-bit
// floats are widened to f32 inside it (load_acc / store_as).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/cuda/common.cuh"

namespace kirzl::kernels::cuda {

inline constexpr int kEwThreads = 256;

template <size_t I, typename... Ts> using nth_t = std::tuple_element_t<I, std::tuple<Ts...>>;

/// VEC elements of T with the alignment of one vector access.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

/// Largest element size among the operand types.
template <typename... Ts> constexpr size_t max_size() {
  size_t m = 1;
  ((m = sizeof(Ts) > m ? sizeof(Ts) : m), ...);
  return m;
}

/// Strides (in elements) of up to kMaxDims merged dims for N operands; operand 0 is the output.
template <typename Index, int N>
struct OffsetCalc {
  int ndim;
  Index sizes[kMaxDims];
  Index strides[N][kMaxDims];

  __device__ __forceinline__ void offsets(Index linear, Index (&off)[N]) const {
    if (ndim == 1) {  // contiguous operands merge to one dim: no division at all
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = linear * strides[k][0];
      return;
    }
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 1; --d) {
      if (d >= ndim) continue;
      const Index i = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
    // The outermost dim takes what is left: no division.
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += linear * strides[k][0];
  }
};

namespace detail {

template <typename Out, typename... In, typename F, size_t... I>
__device__ __forceinline__ Out call_at(const F& f, const void* const* in, const bool* scalar, int64_t i,
                                       std::index_sequence<I...>) {
  return f(static_cast<const In*>(in[I])[scalar[I] ? 0 : i]...);
}

}  // namespace detail

/// Pointers of the inputs (as void, typed inside the kernel) and which of them are broadcast scalars.
template <int N>
struct InputPtrs {
  const void* p[N > 0 ? N : 1];
  bool scalar[N > 0 ? N : 1];
};

// Fast path: contiguous out, inputs contiguous or scalar. Elements [0, head) and the tail after
// the last full vector are done one by one by the first threads; the body in vectors.
template <int VEC, typename Out, typename F, typename... In>
__global__ void __launch_bounds__(kEwThreads)
    ew_contiguous_kernel(Out* __restrict__ out, InputPtrs<sizeof...(In)> in, int64_t n, int64_t head, F f) {
  constexpr int N = sizeof...(In);
  using Seq = std::index_sequence_for<In...>;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t body = (n - head) / VEC;
  const int64_t tail = head + body * VEC;
  if (tid < head) out[tid] = detail::call_at<Out, In...>(f, in.p, in.scalar, tid, Seq{});
  if (tid < n - tail) out[tail + tid] = detail::call_at<Out, In...>(f, in.p, in.scalar, tail + tid, Seq{});
  for (int64_t v = tid; v < body; v += stride) {
    const int64_t i = head + v * VEC;
    Vec<Out, VEC> o;
    if constexpr (N == 0) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) o.v[k] = f();
    } else {
      // Each input: one aligned vector load, or its single value repeated.
      auto load = [&]<size_t J>(std::integral_constant<size_t, J>) {
        using T = nth_t<J, In...>;
        Vec<T, VEC> r;
        const T* p = static_cast<const T*>(in.p[J]);
        if (in.scalar[J]) {
          const T s = p[0];
#pragma unroll
          for (int k = 0; k < VEC; ++k) r.v[k] = s;
        } else {
          r = *reinterpret_cast<const Vec<T, VEC>*>(p + i);
        }
        return r;
      };
      if constexpr (N == 1) {
        auto a = load(std::integral_constant<size_t, 0>{});
#pragma unroll
        for (int k = 0; k < VEC; ++k) o.v[k] = f(a.v[k]);
      } else if constexpr (N == 2) {
        auto a = load(std::integral_constant<size_t, 0>{});
        auto b = load(std::integral_constant<size_t, 1>{});
#pragma unroll
        for (int k = 0; k < VEC; ++k) o.v[k] = f(a.v[k], b.v[k]);
      } else {
        static_assert(N == 3, "elementwise: at most three inputs");
        auto a = load(std::integral_constant<size_t, 0>{});
        auto b = load(std::integral_constant<size_t, 1>{});
        auto c = load(std::integral_constant<size_t, 2>{});
#pragma unroll
        for (int k = 0; k < VEC; ++k) o.v[k] = f(a.v[k], b.v[k], c.v[k]);
      }
    }
    *reinterpret_cast<Vec<Out, VEC>*>(out + i) = o;
  }
}

template <typename Index, typename Out, typename F, typename... In>
__global__ void __launch_bounds__(kEwThreads)
    ew_strided_kernel(Out* __restrict__ out, InputPtrs<sizeof...(In)> in, OffsetCalc<Index, 1 + sizeof...(In)> calc,
                      Index n, F f) {
  constexpr int N = 1 + sizeof...(In);
  const Index stride = Index(gridDim.x) * Index(blockDim.x);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < n; i += stride) {
    Index off[N];
    calc.offsets(i, off);
    out[off[0]] = [&]<size_t... J>(std::index_sequence<J...>) {
      return f(static_cast<const nth_t<J, In...>*>(in.p[J])[off[J + 1]]...);
    }(std::index_sequence_for<In...>{});
  }
}

namespace detail {

// Builds the merged-dims offset calculator; `fits32` says whether 32-bit indices suffice.
template <typename Index, int N>
OffsetCalc<Index, N> make_calc(const Shape& shape, const std::array<Shape, N>& strides) {
  cpu::LoopPlan<N> plan = cpu::make_plan<N>(shape, strides);
  OffsetCalc<Index, N> c{};
  c.ndim = static_cast<int>(plan.shape.size());
  for (int d = 0; d < c.ndim; ++d) {
    c.sizes[d] = static_cast<Index>(plan.shape[d]);
    for (int k = 0; k < N; ++k) c.strides[k][d] = static_cast<Index>(plan.strides[k][d]);
  }
  return c;
}

template <int N>
bool fits_int32(const Shape& shape, const std::array<Shape, N>& strides) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  // The grid-stride loop steps past n by up to one grid: keep that headroom below 2^31.
  if (shape.numel() > (int64_t{1} << 30)) return false;
  for (int k = 0; k < N; ++k) {
    int64_t far = 0;
    for (int64_t d = 0; d < shape.size(); ++d) {
      if (strides[k][d] < 0) return false;
      far += (shape[d] - 1) * strides[k][d];
    }
    if (far > kMax) return false;
  }
  return true;
}

inline size_t misalignment(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes; }

}  // namespace detail

/// Runs out[i] = f(in...[i]) on `out`'s current stream (Note [cuda elementwise]). `Out` and `In...`
/// are kirzl element types matching the tensors' dtypes (checked by the caller); `f` takes and
/// returns the device types. Every input must be broadcastable to out's shape; out may be strided
/// (but must not overlap itself).
template <typename Out, typename... In, typename F, typename... Ts>
void elementwise(const Tensor& out, F f, const Ts&... ins) {
  static_assert(sizeof...(In) == sizeof...(Ts), "elementwise: one element type per input tensor");
  constexpr int N = sizeof...(In);
  using DOut = device_t<Out>;
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t stream = prepare(out);
  InputPtrs<N> ptrs{};
  {
    int k = 0;
    ((ptrs.p[k] = ins.data_ptr(), ptrs.scalar[k] = ins.numel() == 1, ++k), ...);
  }
  const bool fast = out.is_contiguous() && ((ins.numel() == 1 || (ins.is_contiguous() && ins.numel() == n)) && ...);
  if (fast) {
    constexpr int VEC = static_cast<int>(16 / max_size<DOut, device_t<In>...>());
    // Every vector operand must sit at the same offset from a VEC-element boundary.
    bool same = true;
    size_t mis = detail::misalignment(out.data_ptr(), sizeof(DOut) * VEC) / sizeof(DOut);
    {
      int k = 0;
      ((same = same && (ptrs.scalar[k] ||
                        detail::misalignment(ptrs.p[k], sizeof(device_t<In>) * VEC) / sizeof(device_t<In>) == mis),
        ++k),
       ...);
    }
    if (same) {
      const int64_t head = std::min<int64_t>(n, static_cast<int64_t>((VEC - mis) % VEC));
      // grid_for gives at least one block (>= 16 threads), enough for the head and the tail.
      const int64_t vectors = (n - head) / VEC;
      ew_contiguous_kernel<VEC, DOut, F, device_t<In>...>
          <<<grid_for(vectors, kEwThreads), kEwThreads, 0, stream>>>(static_cast<DOut*>(out.data_ptr()), ptrs, n, head, f);
      KIRZL_CUDA_LAUNCH_CHECK();
      return;
    }
  }
  const Shape& shape = out.shape();
  std::array<Shape, N + 1> strides{out.strides(), cpu::broadcast_strides(ins, shape)...};
  if (detail::fits_int32<N + 1>(shape, strides)) {
    auto calc = detail::make_calc<int32_t, N + 1>(shape, strides);
    ew_strided_kernel<int32_t, DOut, F, device_t<In>...><<<grid_for(n, kEwThreads), kEwThreads, 0, stream>>>(
        static_cast<DOut*>(out.data_ptr()), ptrs, calc, static_cast<int32_t>(n), f);
  } else {
    auto calc = detail::make_calc<int64_t, N + 1>(shape, strides);
    ew_strided_kernel<int64_t, DOut, F, device_t<In>...><<<grid_for(n, kEwThreads), kEwThreads, 0, stream>>>(
        static_cast<DOut*>(out.data_ptr()), ptrs, calc, n, f);
  }
  KIRZL_CUDA_LAUNCH_CHECK();
}

/// Device-side conversion between element types, rounding as the CPU's kernels::cpu::copy does:
/// through f32 for 16-bit destinations (double -> float -> bf16, as on the host), through the
/// source's accumulation type otherwise.
template <typename D, typename S>
__device__ __forceinline__ D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else {
    auto a = load_acc(v);
    if constexpr (std::is_same_v<D, __nv_bfloat16> || std::is_same_v<D, __half>) return store_as<D>(static_cast<float>(a));
    else return static_cast<D>(a);
  }
}

}  // namespace kirzl::kernels::cuda
