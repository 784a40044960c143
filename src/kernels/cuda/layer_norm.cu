// CUDA layer norm over the last n elements of each row, statistics in f32 (f64 for f64).
//
// Note [layer norm on CUDA]
// Two paths, chosen on the host from n, the dtype and the pointers' alignment only:
//
// * Register path (layer_norm.cuh; also used by the residual layer norm of fused_layer_norm.cu):
//   vectorisable rows of at most 32 * K 16-byte packs, K in {1, 2, 3, 4, 6, 8} a compile-time
//   number of packs per lane, within a per-lane register budget (kMaxLaneElemsFwd/Bwd): forward
//   n <= 2048 for bf16/f16, 1024 for f32, 512 for f64; backward n <= 1024, 768, 384. ONE WARP PER
//   ROW, 8 warps per block, rows strided over the grid. Lane l holds packs l, l + 32, ... of its
//   row in registers in the storage type (arrays indexed by compile-time indices only, so no
//   local memory), reads x (and g) once with 16-byte loads, all K loads in flight together, and
//   reduces with warp shuffles only: no __syncthreads in the row loop. The statistics are the
//   same corrected two-pass ones as the block path: mean mu0 first, then the sums of d = x - mu0
//   and d^2, so that mean = mu0 + sum(d)/n and var = sum(d^2)/n - (sum(d)/n)^2 keep f32 precision
//   for inputs with a large offset. The backward issues the loads of the warp's next row before
//   working on the current one (two rows in flight per warp: at ~180 registers a block of 8 warps
//   is all an SM holds, so the memory parallelism comes from there). Its lanes own the same
//   columns in every row, so the gw/gb running sums stay in registers across all the rows of the
//   warp (w is re-read per row, from L1).
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
#include "kernels/cuda/layer_norm.cuh"
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
    if (ln_forward_warp<T>(dptr<T0>(y), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()),
                           dptr<T0>(x), w, b, m, n, static_cast<A>(eps), vec, stream))
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
    if (ln_backward_warp<T>(gxp, opt_ptr<T0>(gw), opt_ptr<T0>(gb), dptr<T0>(g), dptr<T0>(x),
                            static_cast<const A*>(mean.data_ptr()), static_cast<const A*>(rstd.data_ptr()), w, m, n,
                            vec && (!w || pack_aligned<T>(w, n)), x.device(), stream))
      return;
    // Block path. P depends on the row count only (Note [layer norm parameter gradients]).
    const int64_t parts = std::clamp<int64_t>(m / 8, 1, 1024);
    const bool in_smem = want_params && 2 * n * static_cast<int64_t>(sizeof(A)) <= kPartialBytes<A>;
    Tensor scratch;
    A* partial = nullptr;
    if (want_params) {
      scratch = ln_scratch<T>(parts, n, x.device());
      partial = static_cast<A*>(scratch.data_ptr());
    }
    const size_t smem = in_smem ? static_cast<size_t>(2 * n) * sizeof(A) : 0;
    ln_backward_kernel<T><<<static_cast<unsigned>(want_params ? parts : std::min<int64_t>(m, int64_t{1} << 30)),
                            threads_for<T>(n), smem, stream>>>(
        gxp, partial, dptr<T0>(g), dptr<T0>(x), static_cast<const A*>(mean.data_ptr()),
        static_cast<const A*>(rstd.data_ptr()), w, m, n, vec, want_params, in_smem);
    KIRZL_CUDA_LAUNCH_CHECK();
    if (want_params) ln_param_reduce<T>(opt_ptr<T0>(gw), opt_ptr<T0>(gb), partial, parts, n, stream);
  });
}

void register_layer_norm_kernels() {
  KIRZL_REGISTER_KERNEL(layer_norm_forward, DeviceType::CUDA, &layer_norm_forward);
  KIRZL_REGISTER_KERNEL(layer_norm_backward, DeviceType::CUDA, &layer_norm_backward);
}

}  // namespace kirzl::kernels::cuda
