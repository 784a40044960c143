// Internal: the register (warp-per-row) path of layer norm on CUDA, shared by layer_norm.cu and
// fused_layer_norm.cu (residual add + layer norm): Note [layer norm on CUDA] in layer_norm.cu.
// Everything is in an unnamed namespace: each including file has its own kernels.
#pragma once

#include "kernels/cuda/nn_common.cuh"

namespace kirzl::kernels::cuda {
namespace {

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

// With kResidual, the normalized row is sum = x + res rounded to T once, which is also written.
template <typename T, int K, bool kResidual>
__global__ void __launch_bounds__(kWarpThreads)
    ln_forward_warp_kernel(T* __restrict__ y, dacc_t<T>* __restrict__ mean, dacc_t<T>* __restrict__ rstd,
                           const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int64_t rows,
                           int n, dacc_t<T> eps, T* __restrict__ sum, const T* __restrict__ res) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  const int lane = threadIdx.x & 31;
  const int packs = n / N;
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
    if constexpr (kResidual) {
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int p = lane + 32 * k;
        if (p < packs) {
          RawPack<T> rv;
          load_raw(rv, res + r * n + p * N);
#pragma unroll
          for (int i = 0; i < N; ++i) xv[k].v[i] = store_as<T>(load_acc(xv[k].v[i]) + load_acc(rv.v[i]));
          *reinterpret_cast<RawPack<T>*>(sum + r * n + p * N) = xv[k];
        }
      }
    }
    A s = 0;
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
      for (int i = 0; i < N; ++i) s += load_acc(xv[k].v[i]);  // padding is 0
    const A mu0 = warp_sum(s) / static_cast<A>(n);
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
    const A shift = sd / static_cast<A>(n);
    const A var = max(A(0), sd2 / static_cast<A>(n) - shift * shift);
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
                            const dacc_t<T>* __restrict__ rstd, const T* __restrict__ w, int64_t rows, int n,
                            const T* __restrict__ gadd) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  extern __shared__ __align__(16) unsigned char ln_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int packs = n / N;
  const bool want_params = partial != nullptr;
  // This lane's parameter-gradient running sums, the same columns in every row.
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
      const A a = warp_sum(sum_d) / static_cast<A>(n);
      const A bb = warp_sum(sum_dx) / static_cast<A>(n);
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
          if (gadd) {  // the residual branch's own gradient (fused_layer_norm.cu)
            A ad[N];
            load_pack(gadd + r * n + p * N, ad);
#pragma unroll
            for (int i = 0; i < N; ++i) out[i] += ad[i];
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

// ---- Host side ----

// The [parts, 2, n] scratch of the backward's partial sums, in the accumulation type.
template <typename T> Tensor ln_scratch(int64_t parts, int64_t n, Device device) {
  return empty({parts, 2, n}, TensorOptions{.dtype = sizeof(dacc_t<T>) == 8 ? DType::f64 : DType::f32, .device = device});
}

template <typename T>
void ln_param_reduce(T* gw, T* gb, const dacc_t<T>* partial, int64_t parts, int64_t n, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + kReduceCols - 1) / kReduceCols), 2);
  ln_param_reduce_kernel<T><<<grid, kReduceCols * kReduceSplit, 0, stream>>>(gw, gb, partial, parts, n);
  KIRZL_CUDA_LAUNCH_CHECK();
}

// Launches the register-path forward and returns true when the rows fit it; `vec`: every pointer
// 16-byte aligned and n a multiple of the pack (pack_aligned). With kResidual, normalizes
// sum = x + res and writes it to `sum`. False, with nothing launched, otherwise.
template <typename T, bool kResidual = false>
bool ln_forward_warp(T* y, dacc_t<T>* mean, dacc_t<T>* rstd, const T* x, const T* w, const T* b, int64_t m, int64_t n,
                     dacc_t<T> eps, bool vec, cudaStream_t stream, T* sum = nullptr, const T* res = nullptr) {
  if (!vec || m <= 0) return false;
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((m + kWarpsPerBlock - 1) / kWarpsPerBlock, int64_t{1} << 30));
  return with_lane_packs<T, kMaxLaneElemsFwd>(n / kPack<T>, [&]<int K>() {
    ln_forward_warp_kernel<T, K, kResidual><<<blocks, kWarpThreads, 0, stream>>>(y, mean, rstd, x, w, b, m,
                                                                                 static_cast<int>(n), eps, sum, res);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

// The register-path backward, gw and gb included (each of gx, gw, gb may be null); `gadd`, when
// given, is added to gx. `vec` as above, over g, x, gx, w and gadd. The grid when gw or gb is
// wanted is P = ceil(m / 64) blocks of 8 warps, a function of m only (Note [layer norm on CUDA]),
// so each warp takes about 8 rows and the partial rows cost little traffic; a warp per row
// otherwise. False, with nothing launched, when the rows do not fit.
template <typename T>
bool ln_backward_warp(T* gx, T* gw, T* gb, const T* g, const T* x, const dacc_t<T>* mean, const dacc_t<T>* rstd,
                      const T* w, int64_t m, int64_t n, bool vec, Device device, cudaStream_t stream,
                      const T* gadd = nullptr) {
  using A = dacc_t<T>;
  const bool want_params = gw || gb;
  if (!vec || m <= 0 || (!gx && !want_params)) return false;
  return with_lane_packs<T, kMaxLaneElemsBwd<T>>(n / kPack<T>, [&]<int K>() {
    const int64_t parts = std::clamp<int64_t>((m + 63) / 64, 1, 1024);
    Tensor scratch;
    A* partial = nullptr;
    if (want_params) {
      scratch = ln_scratch<T>(parts, n, device);
      partial = static_cast<A*>(scratch.data_ptr());
    }
    const unsigned blocks = static_cast<unsigned>(
        want_params ? parts : std::min<int64_t>((m + kWarpsPerBlock - 1) / kWarpsPerBlock, int64_t{1} << 30));
    const size_t smem = want_params ? static_cast<size_t>(2 * n) * sizeof(A) : 0;
    ln_backward_warp_kernel<T, K><<<blocks, kWarpThreads, smem, stream>>>(gx, partial, g, x, mean, rstd, w, m,
                                                                          static_cast<int>(n), gadd);
    KIRZL_CUDA_LAUNCH_CHECK();
    if (want_params) ln_param_reduce<T>(gw, gb, partial, parts, n, stream);
  });
}

}  // namespace
}  // namespace kirzl::kernels::cuda
