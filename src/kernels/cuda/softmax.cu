// CUDA softmax / log-softmax along one dim, forward and backward.
//
// Last dim (stride 1): a warp per row up to 1024 elements, else a block per row; the statistics
// come from one read pass (Note [online softmax]) and the output from a second read, which long
// rows mostly find in L2. Other dims (Note [dim rows] of the CPU kernels): a thread per row,
// neighbouring threads on neighbouring inner positions, so every step reads coalesced.
#include "kernels/cuda/nn_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

namespace kirzl::kernels::cuda {

namespace {

// The row's log-sum-exp and 1/sum from its statistics; NaN for an empty or all -inf row, as on
// the CPU (0/0).
template <typename A> __device__ __forceinline__ void finish(const Online<A>& st, A& shift, A& inv) {
  if (st.m == -INFINITY) {
    shift = inv = NAN;
    return;
  }
  shift = st.m;
  inv = A(1) / st.s;
}

template <typename T, bool kWarp>
__global__ void softmax_last_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t rows, int64_t n, bool lg,
                                    bool vec) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  __shared__ Online<A> smem[32];
  const int tid = kWarp ? (threadIdx.x & 31) : threadIdx.x;
  const int nth = kWarp ? 32 : blockDim.x;
  const int64_t per_block = kWarp ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (kWarp ? threadIdx.x / 32 : 0);
  for (int64_t r = first; r < rows; r += gridDim.x * per_block) {
    const T* xr = x + r * n;
    T* orow = out + r * n;
    const Online<A> st = group_online<kWarp, T>(row_online(xr, n, vec, tid, nth), smem);
    A m, inv;
    finish(st, m, inv);
    const A lse = m + ::log(st.s);
    auto f = [&](A v) { return lg ? v - lse : acc_exp<T>(v - m) * inv; };
    if (vec) {
      for (int64_t k = tid; k < n / N; k += nth) {
        A v[N];
        load_pack(xr + k * N, v);
#pragma unroll
        for (int i = 0; i < N; ++i) v[i] = f(v[i]);
        store_pack(orow + k * N, v);
      }
    } else {
      for (int64_t j = tid; j < n; j += nth) orow[j] = store_as<T>(f(load_acc(xr[j])));
    }
  }
}

template <typename T, bool kWarp>
__global__ void softmax_backward_last_kernel(T* __restrict__ gx, const T* __restrict__ g, const T* __restrict__ y,
                                             int64_t rows, int64_t n, bool lg, bool vec) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  __shared__ A smem[32];
  const int tid = kWarp ? (threadIdx.x & 31) : threadIdx.x;
  const int nth = kWarp ? 32 : blockDim.x;
  const int64_t per_block = kWarp ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (kWarp ? threadIdx.x / 32 : 0);
  for (int64_t r = first; r < rows; r += gridDim.x * per_block) {
    const T *gr = g + r * n, *yr = y + r * n;
    T* out = gx + r * n;
    // softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
    A dot = 0;
    if (vec) {
      for (int64_t k = tid; k < n / N; k += nth) {
        A gv[N], yv[N];
        load_pack(gr + k * N, gv);
        load_pack(yr + k * N, yv);
#pragma unroll
        for (int i = 0; i < N; ++i) dot += lg ? gv[i] : gv[i] * yv[i];
      }
    } else {
      for (int64_t j = tid; j < n; j += nth) dot += lg ? load_acc(gr[j]) : load_acc(gr[j]) * load_acc(yr[j]);
    }
    dot = group_sum<kWarp>(dot, smem);
    auto f = [&](A gv, A yv) { return lg ? gv - acc_exp<T>(yv) * dot : yv * (gv - dot); };
    if (vec) {
      for (int64_t k = tid; k < n / N; k += nth) {
        A gv[N], yv[N];
        load_pack(gr + k * N, gv);
        load_pack(yr + k * N, yv);
#pragma unroll
        for (int i = 0; i < N; ++i) gv[i] = f(gv[i], yv[i]);
        store_pack(out + k * N, gv);
      }
    } else {
      for (int64_t j = tid; j < n; j += nth) out[j] = store_as<T>(f(load_acc(gr[j]), load_acc(yr[j])));
    }
  }
}

// Strided rows: row r starts at (r / inner) * len * inner + r % inner and steps by inner.
template <typename T>
__global__ void softmax_strided_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t outer, int64_t len,
                                       int64_t inner, bool lg) {
  using A = dacc_t<T>;
  const int64_t rows = outer * inner;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (r / inner) * len * inner + r % inner;
    Online<A> st{-INFINITY, A(0)};
    for (int64_t i = 0; i < len; ++i) {
      const A v[1] = {load_acc(x[base + i * inner])};
      online_add<T, 1>(st, v, 1, v[0]);
    }
    A m, inv;
    finish(st, m, inv);
    const A lse = m + ::log(st.s);
    for (int64_t i = 0; i < len; ++i) {
      const A v = load_acc(x[base + i * inner]);
      out[base + i * inner] = store_as<T>(lg ? v - lse : acc_exp<T>(v - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmax_backward_strided_kernel(T* __restrict__ gx, const T* __restrict__ g, const T* __restrict__ y,
                                                int64_t outer, int64_t len, int64_t inner, bool lg) {
  using A = dacc_t<T>;
  const int64_t rows = outer * inner;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (r / inner) * len * inner + r % inner;
    A dot = 0;
    for (int64_t i = 0; i < len; ++i) {
      const int64_t o = base + i * inner;
      dot += lg ? load_acc(g[o]) : load_acc(g[o]) * load_acc(y[o]);
    }
    for (int64_t i = 0; i < len; ++i) {
      const int64_t o = base + i * inner;
      const A gv = load_acc(g[o]), yv = load_acc(y[o]);
      gx[o] = store_as<T>(lg ? gv - acc_exp<T>(yv) * dot : yv * (gv - dot));
    }
  }
}

struct Dims {
  int64_t outer = 1, len = 1, inner = 1;
};
Dims dims_of(const Tensor& t, int64_t dim) {
  Dims d;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < dim) d.outer *= t.size(i);
    else if (i == dim) d.len = t.size(i);
    else d.inner *= t.size(i);
  }
  return d;
}

}  // namespace

void softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (x.numel() == 0) return;
  const Dims d = dims_of(x, dim);
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&]<typename T0>() {
    using T = device_t<T0>;
    T* o = dptr<T0>(out);
    const T* xp = dptr<T0>(x);
    if (d.inner == 1) {
      const int64_t rows = d.outer;
      const bool vec = pack_aligned<T>(o, d.len) && pack_aligned<T>(xp, d.len);
      const RowLaunch l = row_launch<T>(rows, d.len);
      if (l.warp) softmax_last_kernel<T, true><<<l.blocks, l.threads, 0, stream>>>(o, xp, rows, d.len, log, vec);
      else softmax_last_kernel<T, false><<<l.blocks, l.threads, 0, stream>>>(o, xp, rows, d.len, log, vec);
    } else {
      softmax_strided_kernel<T><<<grid_for(d.outer * d.inner, 256), 256, 0, stream>>>(o, xp, d.outer, d.len, d.inner, log);
    }
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void softmax_backward(Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  if (y.numel() == 0) return;
  const Dims d = dims_of(y, dim);
  cudaStream_t stream = prepare(y);
  dispatch_floating(y.dtype(), log ? "log_softmax backward" : "softmax backward", [&]<typename T0>() {
    using T = device_t<T0>;
    T* o = dptr<T0>(gx);
    const T *gp = dptr<T0>(g), *yp = dptr<T0>(y);
    if (d.inner == 1) {
      const int64_t rows = d.outer;
      const bool vec = pack_aligned<T>(o, d.len) && pack_aligned<T>(gp, d.len) && pack_aligned<T>(yp, d.len);
      const RowLaunch l = row_launch<T>(rows, d.len);
      if (l.warp)
        softmax_backward_last_kernel<T, true><<<l.blocks, l.threads, 0, stream>>>(o, gp, yp, rows, d.len, log, vec);
      else
        softmax_backward_last_kernel<T, false><<<l.blocks, l.threads, 0, stream>>>(o, gp, yp, rows, d.len, log, vec);
    } else {
      softmax_backward_strided_kernel<T>
          <<<grid_for(d.outer * d.inner, 256), 256, 0, stream>>>(o, gp, yp, d.outer, d.len, d.inner, log);
    }
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void register_softmax_kernels() {
  KIRZL_REGISTER_KERNEL(softmax, DeviceType::CUDA, &softmax);
  KIRZL_REGISTER_KERNEL(softmax_backward, DeviceType::CUDA, &softmax_backward);
}

}  // namespace kirzl::kernels::cuda
