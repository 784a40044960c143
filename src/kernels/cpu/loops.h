// Internal: strided elementwise loops over N operands on the CPU.
//
// Note [elementwise loops]: every operand is described by a base pointer and strides (in
// elements) aligned to the output's shape; a broadcast dimension has stride 0. Dimensions that
// are contiguous in every operand are merged, so the common cases (all contiguous, or a row
// broadcast) become one or two tight loops the compiler vectorises. Large loops are split
// across OpenMP threads by outer index.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <utility>

#include "kirzl/core/shape.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels::cpu {

/// Below this many elements a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

/// Runs fn(begin, end) over [0, rows), split across threads when rows*row_len is large.
void parallel_rows_impl(int64_t rows, int64_t row_len, const std::function<void(int64_t, int64_t)>& fn);
template <typename Fn>
void parallel_rows(int64_t rows, int64_t row_len, Fn&& fn) {
  if (rows * row_len < kParallelGrain || rows == 1) {
    fn(int64_t{0}, rows);
    return;
  }
  parallel_rows_impl(rows, row_len, fn);
}

/// Splits a flat range [0, n) across threads (when large) as fn(begin, end).
void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= grain) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  parallel_for_impl(n, grain, fn);
}

/// Strides of `t` as seen when broadcast to `shape` (0 for broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

/// Shape and per-operand strides after merging dimensions that are contiguous in all operands.
template <int N>
struct LoopPlan {
  Shape shape;
  std::array<Shape, N> strides;
};

template <int N>
LoopPlan<N> make_plan(const Shape& shape, const std::array<Shape, N>& strides) {
  LoopPlan<N> p;
  // Drop size-1 dims, then merge dim i into i+1 when stride[i] == stride[i+1]*size[i+1] for all.
  for (int64_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    p.shape.push_back(shape[d]);
    for (int k = 0; k < N; ++k) p.strides[k].push_back(strides[k][d]);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    for (int k = 0; k < N; ++k) p.strides[k].push_back(0);
    return p;
  }
  LoopPlan<N> m;
  m.shape.push_back(p.shape[0]);
  for (int k = 0; k < N; ++k) m.strides[k].push_back(p.strides[k][0]);
  for (int64_t d = 1; d < p.shape.size(); ++d) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k)
      if (m.strides[k].back() != p.strides[k][d] * p.shape[d]) mergeable = false;
    if (mergeable) {
      int64_t last = m.shape.size() - 1;
      m.shape[last] *= p.shape[d];
      for (int k = 0; k < N; ++k) m.strides[k][last] = p.strides[k][d];
    } else {
      m.shape.push_back(p.shape[d]);
      for (int k = 0; k < N; ++k) m.strides[k].push_back(p.strides[k][d]);
    }
  }
  return m;
}

/// Calls body(ptrs, inner_strides, n) for every innermost row: ptrs[k] points at the row's first
/// element of operand k (as char*, already offset), inner_strides[k] is in bytes, n the row
/// length. Rows are distributed across threads when the total is large and `parallel` is set.
template <int N, typename Body>
void for_each_row(const Shape& shape, std::array<char*, N> base, const std::array<Shape, N>& elem_strides,
                  const std::array<int64_t, N>& elem_sizes, Body&& body, bool parallel = true) {
  int64_t numel = shape.numel();
  if (numel == 0) return;
  LoopPlan<N> plan = make_plan<N>(shape, elem_strides);
  const int64_t nd = plan.shape.size();
  const int64_t inner = plan.shape[nd - 1];
  std::array<int64_t, N> inner_bytes;
  for (int k = 0; k < N; ++k) inner_bytes[k] = plan.strides[k][nd - 1] * elem_sizes[k];
  const int64_t rows = numel / inner;

  auto run_rows = [&](int64_t begin, int64_t end) {
    // Decompose `begin` into an outer index, then walk rows incrementing it like an odometer.
    std::array<int64_t, kMaxDims> idx{};
    int64_t r = begin;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = r % plan.shape[d];
      r /= plan.shape[d];
    }
    std::array<char*, N> ptr;
    for (int k = 0; k < N; ++k) {
      int64_t off = 0;
      for (int64_t d = 0; d < nd - 1; ++d) off += idx[d] * plan.strides[k][d];
      ptr[k] = base[k] + off * elem_sizes[k];
    }
    for (int64_t row = begin; row < end; ++row) {
      body(ptr, inner_bytes, inner);
      for (int64_t d = nd - 2; d >= 0; --d) {
        for (int k = 0; k < N; ++k) ptr[k] += plan.strides[k][d] * elem_sizes[k];
        if (++idx[d] < plan.shape[d]) break;
        for (int k = 0; k < N; ++k) ptr[k] -= plan.strides[k][d] * plan.shape[d] * elem_sizes[k];
        idx[d] = 0;
      }
    }
  };
  if (parallel) parallel_rows(rows, inner, run_rows);
  else run_rows(0, rows);
}

/// out[i] = f(in0[i], ...) over broadcast operands: `out` must be contiguous with the
/// broadcast shape; each input is read through its broadcast strides. Out and In are the stored
/// element types; f works on whatever it likes (it is called with the stored values).
template <typename Out, typename... In, typename F, typename... Ts>
void map(Tensor& out, F&& f, const Ts&... in) {
  static_assert(sizeof...(In) == sizeof...(Ts), "map: one element type per input tensor");
  constexpr int N = 1 + sizeof...(In);
  const Shape& shape = out.shape();
  const bool all_contig = ((in.is_contiguous() && in.shape() == shape) && ...);
  if (all_contig) {
    Out* o = out.data<Out>();
    std::array<const void*, N - 1> ins{in.data_ptr()...};
    parallel_for(out.numel(), kParallelGrain, [&](int64_t b, int64_t e) {
      [&]<size_t... I>(std::index_sequence<I...>) {
        for (int64_t i = b; i < e; ++i) o[i] = f(static_cast<const In*>(ins[I])[i]...);
      }(std::index_sequence_for<In...>{});
    });
    return;
  }
  std::array<char*, N> base{static_cast<char*>(out.data_ptr()), static_cast<char*>(in.data_ptr())...};
  std::array<Shape, N> strides{out.strides(), broadcast_strides(in, shape)...};
  std::array<int64_t, N> sizes{int64_t(sizeof(Out)), int64_t(sizeof(In))...};
  for_each_row<N>(shape, base, strides, sizes, [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
    [&]<size_t... I>(std::index_sequence<I...>) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) = f(*reinterpret_cast<const In*>(p[I + 1] + i * s[I + 1])...);
    }(std::index_sequence_for<In...>{});
  });
}

}  // namespace kirzl::kernels::cpu
