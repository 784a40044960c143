#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace kirzl::kernels::cpu {

namespace {

// Columns handled together when reducing a middle dimension: the running values stay in cache.
constexpr int64_t kColBlock = 256;
// Fixed summation blocks make a long row's sum independent of the thread count.
constexpr int64_t kRowBlock = 16384;
constexpr int kLanes = 8;

// A reduction over a contiguous x seen as [outer, n, inner], reducing n.
struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};

// When x is contiguous and the reduced dims (ignoring size-1 dims) form one consecutive run,
// returns the [outer, n, inner] split.
bool contiguous_split(const Tensor& x, const std::vector<bool>& reduce, Split& s) {
  if (!x.is_contiguous()) return false;
  int state = 0;  // 0: before the reduced run, 1: inside it, 2: after it
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    if (reduce[d]) {
      if (state == 2) return false;
      state = 1;
      s.n *= x.size(d);
    } else {
      if (state == 1) state = 2;
      (state == 0 ? s.outer : s.inner) *= x.size(d);
    }
  }
  return true;
}

template <typename T, typename Acc>
Acc row_sum(const T* p, int64_t n) {
  Acc lane[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<Acc>(static_cast<acc_t<T>>(p[k + l]));
  Acc acc = 0;
  for (; k < n; ++k) acc += static_cast<Acc>(static_cast<acc_t<T>>(p[k]));
  for (int l = 0; l < kLanes; ++l) acc += lane[l];
  return acc;
}

template <typename T, typename Acc>
Acc blocked_row_sum(const T* p, int64_t n, bool parallel) {
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  if (blocks <= 1) return row_sum<T, Acc>(p, n);
  std::vector<Acc> partial(blocks);
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) partial[i] = row_sum<T, Acc>(p + i * kRowBlock, std::min(kRowBlock, n - i * kRowBlock));
  };
  if (parallel) parallel_for(blocks, 1, run);
  else run(0, blocks);
  Acc acc = 0;
  for (Acc v : partial) acc += v;
  return acc;
}

template <typename Out, typename Acc>
Out store(Acc acc) {
  if constexpr (std::is_integral_v<Out>) return static_cast<Out>(acc);
  else return from_double<Out>(static_cast<double>(acc));
}

template <typename T, typename Acc>
void sum_split(T* o, const T* x, const Split& s) {
  if (s.inner == 1) {
    if (s.outer == 1) {
      o[0] = store<T>(blocked_row_sum<T, Acc>(x, s.n, /*parallel=*/true));
      return;
    }
    parallel_rows(s.outer, s.n, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) o[r] = store<T>(blocked_row_sum<T, Acc>(x + r * s.n, s.n, false));
    });
    return;
  }
  const int64_t col_blocks = (s.inner + kColBlock - 1) / kColBlock;
  parallel_rows(s.outer * col_blocks, s.n * std::min(s.inner, kColBlock), [&](int64_t b, int64_t e) {
    Acc acc[kColBlock];
    for (int64_t task = b; task < e; ++task) {
      const int64_t r = task / col_blocks, j0 = (task % col_blocks) * kColBlock;
      const int64_t w = std::min(kColBlock, s.inner - j0);
      std::fill(acc, acc + w, Acc(0));
      const T* base = x + r * s.n * s.inner + j0;
      for (int64_t k = 0; k < s.n; ++k) {
        const T* row = base + k * s.inner;
        for (int64_t j = 0; j < w; ++j) acc[j] += static_cast<Acc>(static_cast<acc_t<T>>(row[j]));
      }
      for (int64_t j = 0; j < w; ++j) o[r * s.inner + j0 + j] = store<T>(acc[j]);
    }
  });
}

// Any strides, any set of reduced dims: each output element walks its (strided) block.
template <typename T, typename Acc>
void sum_general(T* o, const Tensor& x, const std::vector<bool>& reduce) {
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    (reduce[d] ? red_shape : kept_shape).push_back(x.size(d));
    (reduce[d] ? red_strides : kept_strides).push_back(x.stride(d));
  }
  const T* base = static_cast<const T*>(x.data_ptr());
  const int64_t n_red = red_shape.numel();
  parallel_rows(kept_shape.numel(), n_red, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t off = 0, r = i;
      for (int64_t d = kept_shape.size() - 1; d >= 0; --d) {
        off += (r % kept_shape[d]) * kept_strides[d];
        r /= kept_shape[d];
      }
      Acc acc = 0;
      if (n_red > 0) {
        std::array<char*, 1> p{reinterpret_cast<char*>(const_cast<T*>(base + off))};
        // Serial inner walk: the outer loop is already parallel.
        for_each_row<1>(red_shape, p, {red_strides}, {int64_t(sizeof(T))},
                        [&](const std::array<char*, 1>& q, const std::array<int64_t, 1>& st, int64_t n) {
                          for (int64_t k = 0; k < n; ++k)
                            acc += static_cast<Acc>(static_cast<acc_t<T>>(*reinterpret_cast<const T*>(q[0] + k * st[0])));
                        },
                        /*parallel=*/false);
      }
      o[i] = store<T>(acc);
    }
  });
}

}  // namespace

void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  dispatch_all(x.dtype(), "sum", [&]<typename T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<acc_t<T>>, double, int64_t>;
    T* o = static_cast<T*>(out.data_ptr());
    Split s;
    if (x.numel() > 0 && contiguous_split(x, reduce, s)) sum_split<T, Acc>(o, static_cast<const T*>(x.data_ptr()), s);
    else sum_general<T, Acc>(o, x, reduce);
  });
}

namespace {

template <typename A>
bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>) return v != v;
  else return false;
}

template <bool kMax, typename A>
bool better(A v, A best) {
  if constexpr (kMax) return v > best;
  else return v < best;
}

// Value only, along a contiguous row: branch-free lanes the compiler vectorises.
template <bool kMax, typename T>
T row_extremum(const T* p, int64_t n) {
  using A = acc_t<T>;
  A lane[kLanes];
  bool nan[kLanes] = {};
  for (int l = 0; l < kLanes; ++l) lane[l] = static_cast<A>(p[0]);
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      A v = static_cast<A>(p[k + l]);
      nan[l] |= is_nan(v);
      lane[l] = better<kMax>(v, lane[l]) ? v : lane[l];
    }
  A best = lane[0];
  bool any_nan = false;
  for (int l = 0; l < kLanes; ++l) {
    any_nan |= nan[l];
    best = better<kMax>(lane[l], best) ? lane[l] : best;
  }
  for (; k < n; ++k) {
    A v = static_cast<A>(p[k]);
    any_nan |= is_nan(v);
    best = better<kMax>(v, best) ? v : best;
  }
  if (any_nan) return T(std::numeric_limits<A>::quiet_NaN());
  return T(best);
}

// Value and first index along a contiguous row.
template <bool kMax, typename T>
void row_arg_extremum(const T* p, int64_t n, T* value, int64_t* index) {
  using A = acc_t<T>;
  A best = static_cast<A>(p[0]);
  int64_t bi = 0;
  if (!is_nan(best)) {
    for (int64_t k = 1; k < n; ++k) {
      A v = static_cast<A>(p[k]);
      if (is_nan(v)) {
        best = v;
        bi = k;
        break;
      }
      if (better<kMax>(v, best)) {
        best = v;
        bi = k;
      }
    }
  }
  if (value) *value = T(best);
  if (index) *index = bi;
}

template <bool kMax, typename T>
void extremum_split(T* vo, int64_t* io, const T* x, const Split& s) {
  using A = acc_t<T>;
  if (s.inner == 1) {
    parallel_rows(s.outer, s.n, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        if (io) row_arg_extremum<kMax>(x + r * s.n, s.n, vo ? vo + r : nullptr, io + r);
        else vo[r] = row_extremum<kMax>(x + r * s.n, s.n);
      }
    });
    return;
  }
  const int64_t col_blocks = (s.inner + kColBlock - 1) / kColBlock;
  parallel_rows(s.outer * col_blocks, s.n * std::min(s.inner, kColBlock), [&](int64_t b, int64_t e) {
    A best[kColBlock];
    int64_t idx[kColBlock];
    for (int64_t task = b; task < e; ++task) {
      const int64_t r = task / col_blocks, j0 = (task % col_blocks) * kColBlock;
      const int64_t w = std::min(kColBlock, s.inner - j0);
      const T* base = x + r * s.n * s.inner + j0;
      for (int64_t j = 0; j < w; ++j) {
        best[j] = static_cast<A>(base[j]);
        idx[j] = 0;
      }
      for (int64_t k = 1; k < s.n; ++k) {
        const T* row = base + k * s.inner;
        for (int64_t j = 0; j < w; ++j) {
          A v = static_cast<A>(row[j]);
          // Once a column holds NaN it keeps it (and its first index).
          if (!is_nan(best[j]) && (is_nan(v) || better<kMax>(v, best[j]))) {
            best[j] = v;
            idx[j] = k;
          }
        }
      }
      for (int64_t j = 0; j < w; ++j) {
        if (vo) vo[r * s.inner + j0 + j] = T(best[j]);
        if (io) io[r * s.inner + j0 + j] = idx[j];
      }
    }
  });
}

}  // namespace

void extremum(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  KIRZL_INTERNAL_ASSERT(x.is_contiguous() && x.size(dim) > 0);
  Split s;
  for (int64_t d = 0; d < x.dim(); ++d) (d < dim ? s.outer : d == dim ? s.n : s.inner) *= x.size(d);
  if (s.outer * s.inner == 0) return;
  dispatch_all(x.dtype(), is_max ? "max" : "min", [&]<typename T>() {
    T* vo = values.defined() ? values.data<T>() : nullptr;
    int64_t* io = indices.defined() ? indices.data<int64_t>() : nullptr;
    const T* xp = static_cast<const T*>(x.data_ptr());
    if (is_max) extremum_split<true>(vo, io, xp, s);
    else extremum_split<false>(vo, io, xp, s);
  });
}

void register_reduce_kernels() {
  KIRZL_REGISTER_KERNEL(sum, DeviceType::CPU, &sum);
  KIRZL_REGISTER_KERNEL(extremum, DeviceType::CPU, &extremum);
}

}  // namespace kirzl::kernels::cpu
