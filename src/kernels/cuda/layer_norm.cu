// CUDA layer norm over the last n elements of each row, statistics in f32 (f64 for f64).
//
// Note [layer norm on CUDA]
// Two paths, chosen on the host from n, the dtype and the pointers' alignment only:
//
// * Register path (vectorisable rows with at most 32 * K 16-byte packs, K a compile-time number
//   of packs per lane: n <= 2048 for bf16/f16 forward, 1024 backward; see kMaxLaneElems): ONE WARP
//   PER ROW, 8 warps per block, rows strided over the grid. Lane l holds packs l, l + 32, ... of
//   its row in registers (arrays indexed by compile-time indices only, so no local memory), reads
//   x (and g) once with 16-byte loads, all K loads in flight together, and reduces with warp
//   shuffles only: no __syncthreads in the row loop. The statistics are the same corrected
//   two-pass ones as the block path: mean mu0 first, then the sums of d = x - mu0 and d^2, so that
//   mean = mu0 + sum(d)/n and var = sum(d^2)/n - (sum(d)/n)^2 keep f32 precision for inputs with a
//   large offset. The backward lane owns the same columns in every row, so its gw/gb running
//   sums stay in registers across all the rows its warp processes (w is re-read per row from L1).
// * Block path (longer rows, or rows that cannot be read as 16-byte packs): a block per row, the
//   row cached in shared memory when it fits, block reductions (below).
//
// Determinism (Note [layer norm parameter gradients]): the backward grid P (the number of [2, n]
// partial rows of the scratch) is a function of the row count and the path only, never of the GPU
// or of timing. Register path: warp w of block p takes rows (p * 8 + w) + k * 8P in order; at the
// end the 8 warps add their column sums into shared memory one warp after another (warp 0 first)
// and the block writes its partial row. Block path: block p takes rows p, p + P, ..., one column
// per thread. Then ln_param_reduce_kernel adds the P partial rows, each thread a fixed strided
// subset of them in order and the subsets in order through shared memory. No atomics, so gw and
// gb are bitwise reproducible run to run; gx does not depend on the grid at all.
//
// Block-path forward: the row is read from global memory once, kept in shared memory when it fits
// (else re-read, mostly from L2).
#include "kernels/cuda/nn_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/layer_norm.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int64_t kCacheBytes = 32 * 1024;    // row cache of the forward
// Partial gw/gb sums of the backward in shared memory. A block may use 48 KiB of shared memory
// without opting in, and that counts the kernels' static `red[32]` too: the dynamic part must leave
// room for it (widths 6129-6144 in f32 and 3057-3072 in f64 asked for more and failed to launch).
constexpr int64_t kSmemLimit = 48 * 1024;
template <typename A> constexpr int64_t kPartialBytes = kSmemLimit - 32 * static_cast<int64_t>(sizeof(A));

template <typename T> unsigned threads_for(int64_t n) {
  const int64_t packs = (n + kPack<T> - 1) / kPack<T>;
  return static_cast<unsigned>(std::clamp<int64_t>((packs + 31) / 32 * 32, 32, 512));
}

// Calls f(j, v) for this thread's elements of a row (packs tid, tid + nth, ... when vec).
template <typename T, typename F>
__device__ __forceinline__ void for_row(const T* row, int64_t n, bool vec, F&& f) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  if (vec) {
    for (int64_t k = threadIdx.x; k < n / N; k += blockDim.x) {
      A v[N];
      load_pack(row + k * N, v);
#pragma unroll
      for (int i = 0; i < N; ++i) f(k * N + i, v[i]);
    }
  } else {
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) f(j, load_acc(row[j]));
  }
}

template <typename T>
__global__ void ln_forward_kernel(T* __restrict__ y, dacc_t<T>* __restrict__ mean, dacc_t<T>* __restrict__ rstd,
                                  const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                  int64_t rows, int64_t n, dacc_t<T> eps, bool vec, bool cached) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  extern __shared__ __align__(16) unsigned char ln_smem[];
  A* cache = reinterpret_cast<A*>(ln_smem);
  __shared__ A red[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    A s = 0;
    for_row(xr, n, vec, [&](int64_t j, A v) {
      if (cached) cache[j] = v;
      s += v;
    });
    const A mu0 = block_sum(s, red) / static_cast<A>(n);
    // Each thread reads back only the cache entries it wrote: no barrier needed before this.
    A sd = 0, sd2 = 0;
    auto dev = [&](int64_t j, A v) {
      const A d = v - mu0;
      sd += d;
      sd2 += d * d;
    };
    if (cached) {
      if (vec) {
        for (int64_t k = threadIdx.x; k < n / N; k += blockDim.x)
#pragma unroll
          for (int i = 0; i < N; ++i) dev(k * N + i, cache[k * N + i]);
      } else {
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dev(j, cache[j]);
      }
    } else {
      for_row(xr, n, vec, dev);
    }
    sd = block_sum(sd, red);
    sd2 = block_sum(sd2, red);
    const A shift = sd / static_cast<A>(n);
    const A var = max(A(0), sd2 / static_cast<A>(n) - shift * shift);
    const A rs = A(1) / sqrt(var + eps);
    const A mu = mu0 + shift;
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
    auto out = [&](int64_t j, A v) {
      A o = (v - mu) * rs;
      if (w) o *= load_acc(w[j]);
      if (b) o += load_acc(b[j]);
      return o;
    };
    T* yr = y + r * n;
    if (vec) {
      for (int64_t k = threadIdx.x; k < n / N; k += blockDim.x) {
        A v[N];
        if (cached) {
#pragma unroll
          for (int i = 0; i < N; ++i) v[i] = cache[k * N + i];
        } else {
          load_pack(xr + k * N, v);
        }
#pragma unroll
        for (int i = 0; i < N; ++i) v[i] = out(k * N + i, v[i]);
        store_pack(yr + k * N, v);
      }
    } else {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = store_as<T>(out(j, cached ? cache[j] : load_acc(xr[j])));
    }
    __syncthreads();  // the next row overwrites the cache
  }
}

// Note [layer norm parameter gradients] (top of file). `partial` is this block's [2, n] slice of
// the scratch; `in_smem` puts the running sums in shared memory and copies them out at the end.
template <typename T>
__global__ void ln_backward_kernel(T* __restrict__ gx, dacc_t<T>* __restrict__ partial, const T* __restrict__ g,
                                   const T* __restrict__ x, const dacc_t<T>* __restrict__ mean,
                                   const dacc_t<T>* __restrict__ rstd, const T* __restrict__ w, int64_t rows,
                                   int64_t n, bool vec, bool want_params, bool in_smem) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  extern __shared__ __align__(16) unsigned char ln_smem[];
  __shared__ A red[32];
  A* part = partial ? partial + blockIdx.x * 2 * n : nullptr;
  A* acc = in_smem ? reinterpret_cast<A*>(ln_smem) : part;
  if (want_params)
    for (int64_t j = threadIdx.x; j < 2 * n; j += blockDim.x) acc[j] = 0;
  __syncthreads();
  // Columns are visited by the same thread in every row (same loop shape), so each running sum
  // belongs to one thread and needs no barrier.
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *gr = g + r * n, *xr = x + r * n;
    const A mu = mean[r], rs = rstd[r];
    A sum_d = 0, sum_dx = 0;
    auto visit = [&](int64_t j, A gv, A xv) {
      const A xh = (xv - mu) * rs;
      const A d = gv * (w ? load_acc(w[j]) : A(1));
      sum_d += d;
      sum_dx += d * xh;
      if (want_params) {
        acc[j] += gv * xh;
        acc[n + j] += gv;
      }
    };
    if (vec) {
      for (int64_t k = threadIdx.x; k < n / N; k += blockDim.x) {
        A gv[N], xv[N];
        load_pack(gr + k * N, gv);
        load_pack(xr + k * N, xv);
#pragma unroll
        for (int i = 0; i < N; ++i) visit(k * N + i, gv[i], xv[i]);
      }
    } else {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) visit(j, load_acc(gr[j]), load_acc(xr[j]));
    }
    if (!gx) continue;
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w.
    const A a = block_sum(sum_d, red) / static_cast<A>(n);
    const A bb = block_sum(sum_dx, red) / static_cast<A>(n);
    auto grad = [&](int64_t j, A gv, A xv) {
      const A xh = (xv - mu) * rs;
      const A d = gv * (w ? load_acc(w[j]) : A(1));
      return rs * (d - a - xh * bb);
    };
    T* o = gx + r * n;
    if (vec) {
      for (int64_t k = threadIdx.x; k < n / N; k += blockDim.x) {
        A gv[N], xv[N];
        load_pack(gr + k * N, gv);
        load_pack(xr + k * N, xv);
#pragma unroll
        for (int i = 0; i < N; ++i) gv[i] = grad(k * N + i, gv[i], xv[i]);
        store_pack(o + k * N, gv);
      }
    } else {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) o[j] = store_as<T>(grad(j, load_acc(gr[j]), load_acc(xr[j])));
    }
  }
  __syncthreads();
  if (want_params && in_smem)
    for (int64_t j = threadIdx.x; j < 2 * n; j += blockDim.x) part[j] = acc[j];
}

// gw[j] = sum over blocks p = 0 .. P-1 of partial[p][0][j] (gb likewise from partial[p][1][j]), in
// a fixed order: thread (c, t) of a 32 x 8 block adds parts t, t + 8, ... of column c in order,
// then thread (c, 0) adds the 8 subtotals in order. blockIdx.y picks gw (0) or gb (1).
constexpr int kReduceCols = 32, kReduceSplit = 8;
template <typename T>
__global__ void __launch_bounds__(kReduceCols * kReduceSplit)
    ln_param_reduce_kernel(T* __restrict__ gw, T* __restrict__ gb, const dacc_t<T>* __restrict__ partial,
                           int64_t parts, int64_t n) {
  using A = dacc_t<T>;
  __shared__ A sub[kReduceSplit][kReduceCols];
  T* out = blockIdx.y == 0 ? gw : gb;
  if (!out) return;  // uniform over the block
  const int c = threadIdx.x % kReduceCols, t = threadIdx.x / kReduceCols;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kReduceCols + c;
  const A* src = partial + static_cast<int64_t>(blockIdx.y) * n + j;
  A s = 0;
  if (j < n)
#pragma unroll 4
    for (int64_t p = t; p < parts; p += kReduceSplit) s += src[p * 2 * n];
  sub[t][c] = s;
  __syncthreads();
  if (t == 0 && j < n) {
    A tot = sub[0][c];
#pragma unroll
    for (int u = 1; u < kReduceSplit; ++u) tot += sub[u][c];
    out[j] = store_as<T>(tot);
  }
}

// ---- Register path: a warp per row (Note [layer norm on CUDA]) ----

constexpr int kWarpsPerBlock = 8;
constexpr unsigned kWarpThreads = 32 * kWarpsPerBlock;
// Elements a lane may hold per row: x only in the forward. The backward holds g and x of two rows
// (this one and the next, prefetched), w, and the f32 (f64) gw/gb running sums, about
// (5 sizeof(T) + 2 sizeof(acc)) / 4 registers per element, which must stay under the 255-register
// limit without spilling: 32 elements for 16-bit types, 24 for f32, 12 for f64.
constexpr int kMaxLaneElemsFwd = 64;
template <typename T> constexpr int kMaxLaneElemsBwd = sizeof(T) == 2 ? 32 : sizeof(T) == 4 ? 24 : 12;

// Calls f.template operator()<K>() for the smallest K in {1, 2, 3, 4, 6, 8} with packs <= 32 K
// and K * kPack<T> <= kMaxElems; false when there is none (the row takes the block path).
template <typename T, int kMaxElems, typename F> bool with_lane_packs(int64_t packs, F&& f) {
  constexpr int N = kPack<T>;
  auto try_k = [&]<int K>() {
    if constexpr (K * N <= kMaxElems) {
      if (packs <= 32 * K) {
        f.template operator()<K>();
        return true;
      }
    }
    return false;
  };
  return try_k.template operator()<1>() || try_k.template operator()<2>() || try_k.template operator()<3>() ||
         try_k.template operator()<4>() || try_k.template operator()<6>() || try_k.template operator()<8>();
}

// A lane keeps its row packs in the storage type (16-bit packs take half the registers of f32)
// and widens an element where it is used.
template <typename T> using RawPack = Pack<T, kPack<T>>;
template <typename T> __device__ __forceinline__ void load_raw(RawPack<T>& r, const T* p) {
  r = *reinterpret_cast<const RawPack<T>*>(p);
}
template <typename T> __device__ __forceinline__ void fill_raw(RawPack<T>& r, float v) {
  if (v == 0.f) {
    *reinterpret_cast<uint4*>(&r) = make_uint4(0, 0, 0, 0);  // +0 in every type
  } else {
#pragma unroll
    for (int i = 0; i < kPack<T>; ++i) r.v[i] = store_as<T>(static_cast<dacc_t<T>>(v));
  }
}

template <typename T, int K>
__global__ void __launch_bounds__(kWarpThreads)
    ln_forward_warp_kernel(T* __restrict__ y, dacc_t<T>* __restrict__ mean, dacc_t<T>* __restrict__ rstd,
                           const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int64_t rows,
                           int n, dacc_t<T> eps) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  const int lane = threadIdx.x & 31;
  const int packs = n / N;
  const A inv_n = A(1) / static_cast<A>(n);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5); r < rows; r += stride) {
    const T* xr = x + r * n;
    RawPack<T> xv[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int p = lane + 32 * k;
      if (p < packs) load_raw(xv[k], xr + p * N);
      else fill_raw(xv[k], 0.f);
    }
    A s = 0;
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
      for (int i = 0; i < N; ++i) s += load_acc(xv[k].v[i]);  // padding is 0
    const A mu0 = warp_sum(s) * inv_n;
    A sd = 0, sd2 = 0;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (lane + 32 * k < packs)
#pragma unroll
        for (int i = 0; i < N; ++i) {
          const A d = load_acc(xv[k].v[i]) - mu0;
          sd += d;
          sd2 += d * d;
        }
    sd = warp_sum(sd);
    sd2 = warp_sum(sd2);
    const A shift = sd * inv_n;
    const A var = max(A(0), sd2 * inv_n - shift * shift);
    const A rs = A(1) / sqrt(var + eps);
    const A mu = mu0 + shift;
    if (lane == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
    T* yr = y + r * n;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int p = lane + 32 * k;
      if (p < packs) {
        A o[N];
#pragma unroll
        for (int i = 0; i < N; ++i) o[i] = (load_acc(xv[k].v[i]) - mu) * rs;
        if (w) {
          A wv[N];
          load_pack(w + p * N, wv);
#pragma unroll
          for (int i = 0; i < N; ++i) o[i] *= wv[i];
        }
        if (b) {
          A bv[N];
          load_pack(b + p * N, bv);
#pragma unroll
          for (int i = 0; i < N; ++i) o[i] += bv[i];
        }
        store_pack(yr + p * N, o);
      }
    }
  }
}

// `partial` is the [gridDim.x, 2, n] scratch (null when no parameter gradient is wanted); the
// dynamic shared memory holds 2 n accumulators when it is not.
template <typename T, int K>
__global__ void __launch_bounds__(kWarpThreads)
    ln_backward_warp_kernel(T* __restrict__ gx, dacc_t<T>* __restrict__ partial, const T* __restrict__ g,
                            const T* __restrict__ x, const dacc_t<T>* __restrict__ mean,
                            const dacc_t<T>* __restrict__ rstd, const T* __restrict__ w, int64_t rows, int n) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  extern __shared__ __align__(16) unsigned char ln_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int packs = n / N;
  const A inv_n = A(1) / static_cast<A>(n);
  const bool want_params = partial != nullptr;
  // This lane's weights and parameter-gradient running sums, the same columns in every row.
  A aw[K][N], ab[K][N];
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int i = 0; i < N; ++i) aw[k][i] = ab[k][i] = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  // Loads the g and x packs of row rr (zeros past the row or past the last row) and its statistics.
  auto load_row = [&](int64_t rr, RawPack<T>(&gq)[K], RawPack<T>(&xq)[K], A& muq, A& rsq) {
    const bool ok = rr < rows;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int p = lane + 32 * k;
      if (ok && p < packs) {
        load_raw(gq[k], g + rr * n + p * N);
        load_raw(xq[k], x + rr * n + p * N);
      } else {
        fill_raw(gq[k], 0.f);
        fill_raw(xq[k], 0.f);
      }
    }
    muq = ok ? mean[rr] : A(0);
    rsq = ok ? rstd[rr] : A(0);
  };
  int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  RawPack<T> gv[K], xv[K];
  A mu, rs;
  load_row(r, gv, xv, mu, rs);
  for (; r < rows; r += stride) {
    // The next row's loads are issued first and stay in flight while this row is worked on: two
    // rows per warp in flight, for the same occupancy (Note [layer norm on CUDA]).
    RawPack<T> gn[K], xn[K];
    A mun, rsn;
    load_row(r + stride, gn, xn, mun, rsn);
    // w is re-read per row (an L1 hit after the first row): kept in registers across rows, the
    // compiler hoists its widened f32 copy out of the loop, which costs registers.
    RawPack<T> wv[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int p = lane + 32 * k;
      if (w && p < packs) load_raw(wv[k], w + p * N);
      else fill_raw(wv[k], p < packs ? 1.f : 0.f);
    }
    // Padding has g = 0, so it adds nothing to the sums below.
    A sum_d = 0, sum_dx = 0;
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const A gi = load_acc(gv[k].v[i]);
        const A xh = (load_acc(xv[k].v[i]) - mu) * rs;
        const A d = gi * load_acc(wv[k].v[i]);
        sum_d += d;
        sum_dx += d * xh;
        aw[k][i] += gi * xh;
        ab[k][i] += gi;
      }
    if (gx) {
      // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w.
      const A a = warp_sum(sum_d) * inv_n;
      const A bb = warp_sum(sum_dx) * inv_n;
      T* o = gx + r * n;
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int p = lane + 32 * k;
        if (p < packs) {
          A out[N];
#pragma unroll
          for (int i = 0; i < N; ++i) {
            const A xh = (load_acc(xv[k].v[i]) - mu) * rs;
            out[i] = rs * (load_acc(gv[k].v[i]) * load_acc(wv[k].v[i]) - a - xh * bb);
          }
          store_pack(o + p * N, out);
        }
      }
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
      gv[k] = gn[k];
      xv[k] = xn[k];
    }
    mu = mun;
    rs = rsn;
  }
  if (!want_params) return;
  // The block's warps add their sums into shared memory in a fixed order: warp 0 stores, then
  // warps 1, 2, ... add, one at a time.
  A* acc = reinterpret_cast<A*>(ln_smem);
  for (int ww = 0; ww < kWarpsPerBlock; ++ww) {
    if (warp == ww) {
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int p = lane + 32 * k;
        if (p < packs)
#pragma unroll
          for (int i = 0; i < N; ++i) {
            const int j = p * N + i;
            acc[j] = ww == 0 ? aw[k][i] : acc[j] + aw[k][i];
            acc[n + j] = ww == 0 ? ab[k][i] : acc[n + j] + ab[k][i];
          }
      }
    }
    __syncthreads();
  }
  A* part = partial + static_cast<int64_t>(blockIdx.x) * 2 * n;
  for (int j = threadIdx.x; j < 2 * n; j += blockDim.x) part[j] = acc[j];
}

template <typename T0> device_t<T0>* opt_ptr(const Tensor& t) { return t.defined() ? dptr<T0>(t) : nullptr; }

}  // namespace

void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  if (m == 0) return;
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), "layer_norm", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    const T* w = opt_ptr<T0>(weight);
    const T* b = opt_ptr<T0>(bias);
    const bool vec = pack_aligned<T>(x.data_ptr(), n) && pack_aligned<T>(y.data_ptr(), n) &&
                     (!w || pack_aligned<T>(w, n)) && (!b || pack_aligned<T>(b, n));
    const unsigned warp_blocks = static_cast<unsigned>(std::min<int64_t>((m + kWarpsPerBlock - 1) / kWarpsPerBlock,
                                                                          int64_t{1} << 30));
    if (vec && with_lane_packs<T, kMaxLaneElemsFwd>(n / kPack<T>, [&]<int K>() {
          ln_forward_warp_kernel<T, K><<<warp_blocks, kWarpThreads, 0, stream>>>(
              dptr<T0>(y), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()), dptr<T0>(x), w, b, m,
              static_cast<int>(n), static_cast<A>(eps));
          KIRZL_CUDA_LAUNCH_CHECK();
        }))
      return;
    const bool cached = n * static_cast<int64_t>(sizeof(A)) <= kCacheBytes;
    const size_t smem = cached ? static_cast<size_t>(n) * sizeof(A) : 0;
    ln_forward_kernel<T><<<static_cast<unsigned>(std::min<int64_t>(m, int64_t{1} << 30)), threads_for<T>(n), smem,
                           stream>>>(dptr<T0>(y), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()),
                                     dptr<T0>(x), w, b, m, n, static_cast<A>(eps), vec, cached);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  const bool want_params = gw.defined() || gb.defined();
  if (!gx.defined() && !want_params) return;
  cudaStream_t stream = prepare(x);
  if (m == 0) {
    if (gw.defined()) gw.zero_();
    if (gb.defined()) gb.zero_();
    return;
  }
  dispatch_floating(x.dtype(), "layer_norm backward", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    const T* w = opt_ptr<T0>(weight);
    T* gxp = opt_ptr<T0>(gx);
    const bool vec = pack_aligned<T>(x.data_ptr(), n) && pack_aligned<T>(g.data_ptr(), n) &&
                     (!gxp || pack_aligned<T>(gxp, n));
    Tensor scratch;
    A* partial = nullptr;
    auto make_scratch = [&](int64_t parts) {
      scratch = empty({parts, 2, n}, TensorOptions{.dtype = sizeof(A) == 8 ? DType::f64 : DType::f32, .device = x.device()});
      partial = static_cast<A*>(scratch.data_ptr());
    };
    auto reduce_params = [&](int64_t parts) {
      const dim3 grid(static_cast<unsigned>((n + kReduceCols - 1) / kReduceCols), 2);
      ln_param_reduce_kernel<T><<<grid, kReduceCols * kReduceSplit, 0, stream>>>(opt_ptr<T0>(gw), opt_ptr<T0>(gb),
                                                                                  partial, parts, n);
      KIRZL_CUDA_LAUNCH_CHECK();
    };
    // Register path (Note [layer norm on CUDA]): P = ceil(m / 64) blocks of 8 warps when the
    // parameter gradients are wanted (a function of m only), so each warp takes about 8 rows and
    // the partial rows cost little traffic; a warp per row otherwise.
    if (vec && (!w || pack_aligned<T>(w, n)) && with_lane_packs<T, kMaxLaneElemsBwd<T>>(n / kPack<T>, [&]<int K>() {
          const int64_t parts = std::clamp<int64_t>((m + 63) / 64, 1, 1024);
          if (want_params) make_scratch(parts);
          const unsigned blocks = static_cast<unsigned>(
              want_params ? parts : std::min<int64_t>((m + kWarpsPerBlock - 1) / kWarpsPerBlock, int64_t{1} << 30));
          const size_t smem = want_params ? static_cast<size_t>(2 * n) * sizeof(A) : 0;
          ln_backward_warp_kernel<T, K><<<blocks, kWarpThreads, smem, stream>>>(
              gxp, partial, dptr<T0>(g), dptr<T0>(x), static_cast<const A*>(mean.data_ptr()),
              static_cast<const A*>(rstd.data_ptr()), w, m, static_cast<int>(n));
          KIRZL_CUDA_LAUNCH_CHECK();
          if (want_params) reduce_params(parts);
        }))
      return;
    // Block path. P depends on the row count only (Note [layer norm parameter gradients]).
    const int64_t parts = std::clamp<int64_t>(m / 8, 1, 1024);
    const bool in_smem = want_params && 2 * n * static_cast<int64_t>(sizeof(A)) <= kPartialBytes<A>;
    if (want_params) make_scratch(parts);
    const size_t smem = in_smem ? static_cast<size_t>(2 * n) * sizeof(A) : 0;
    ln_backward_kernel<T><<<static_cast<unsigned>(want_params ? parts : std::min<int64_t>(m, int64_t{1} << 30)),
                            threads_for<T>(n), smem, stream>>>(
        gxp, partial, dptr<T0>(g), dptr<T0>(x), static_cast<const A*>(mean.data_ptr()),
        static_cast<const A*>(rstd.data_ptr()), w, m, n, vec, want_params, in_smem);
    KIRZL_CUDA_LAUNCH_CHECK();
    if (want_params) reduce_params(parts);
  });
}

}  // namespace kirzl::kernels::cuda
