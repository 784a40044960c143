// CUDA reference causal attention: plain kernels that materialise the [B, T, T] probabilities,
// for correctness checks and small models (the fast path is flash attention, elsewhere).
//
// Forward: a block per query row computes its scores, softmax and probability row; then a thread
// per output element sums p_ij v_j. Backward: a block per query row forms
// dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij') * scale with dP_ij = g_i . v_j into a scratch
// tensor; then a thread per element of gq, gk, gv sums over its row or column in a fixed order
// (no atomics: reproducible run to run).
#include "kernels/attention.h"
#include "kernels/cuda/nn_common.cuh"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr unsigned kRowThreads = 128;

template <typename T>
__global__ void attn_probs_kernel(dacc_t<T>* __restrict__ probs, const T* __restrict__ q, const T* __restrict__ k,
                                  int64_t B, int64_t Tn, int64_t D, dacc_t<T> scale) {
  using A = dacc_t<T>;
  __shared__ A red[32];
  for (int64_t row = blockIdx.x; row < B * Tn; row += gridDim.x) {
    const int64_t b = row / Tn, i = row % Tn;
    const T* qi = q + row * D;
    A* p = probs + row * Tn;
    A m = -INFINITY;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
      const T* kj = k + (b * Tn + j) * D;
      A s = 0;
      for (int64_t d = 0; d < D; ++d) s += load_acc(qi[d]) * load_acc(kj[d]);
      s *= scale;
      p[j] = s;
      m = max(m, s);
    }
    // max over the block via the sum machinery's barrier pattern: -max(-x) is not a sum, so
    // reduce by warp shuffles and shared memory directly.
    for (int o = 16; o > 0; o >>= 1) m = max(m, __shfl_xor_sync(0xffffffffu, m, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) m = max(m, red[w]);
    A sum = 0;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
      const A e = exp(p[j] - m);
      p[j] = e;
      sum += e;
    }
    sum = block_sum(sum, red);
    const A inv = A(1) / sum;
    for (int64_t j = threadIdx.x; j < Tn; j += blockDim.x) p[j] = j <= i ? p[j] * inv : A(0);
  }
}

// out[b, i, c] = sum_{j <= i} m[b, i, j] x[b, j, c]: with m = probs, x = v it is the output; with
// m = ds, x = k it is gq.
template <typename T>
__global__ void attn_row_kernel(T* __restrict__ out, const dacc_t<T>* __restrict__ m, const T* __restrict__ x,
                                int64_t B, int64_t Tn, int64_t C) {
  using A = dacc_t<T>;
  const int64_t total = B * Tn * C;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = o % C, row = o / C, b = row / Tn, i = row % Tn;
    const A* mi = m + row * Tn;
    A acc = 0;
    for (int64_t j = 0; j <= i; ++j) acc += mi[j] * load_acc(x[(b * Tn + j) * C + c]);
    out[o] = store_as<T>(acc);
  }
}

// ds[b, i, j] = p_ij (dp_ij - sum_j' p_ij' dp_ij') * scale for j <= i, 0 above the diagonal.
template <typename T>
__global__ void attn_ds_kernel(dacc_t<T>* __restrict__ ds, const dacc_t<T>* __restrict__ probs,
                               const T* __restrict__ g, const T* __restrict__ v, int64_t B, int64_t Tn, int64_t Dv,
                               dacc_t<T> scale) {
  using A = dacc_t<T>;
  __shared__ A red[32];
  for (int64_t row = blockIdx.x; row < B * Tn; row += gridDim.x) {
    const int64_t b = row / Tn, i = row % Tn;
    const T* gi = g + row * Dv;
    const A* p = probs + row * Tn;
    A* d = ds + row * Tn;
    A dot = 0;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
      const T* vj = v + (b * Tn + j) * Dv;
      A dp = 0;
      for (int64_t e = 0; e < Dv; ++e) dp += load_acc(gi[e]) * load_acc(vj[e]);
      d[j] = dp;
      dot += p[j] * dp;
    }
    dot = block_sum(dot, red);
    // Each thread rewrites only the entries it wrote above.
    for (int64_t j = threadIdx.x; j < Tn; j += blockDim.x) d[j] = j <= i ? p[j] * (d[j] - dot) * scale : A(0);
  }
}

// gk[b, j, c] = sum_{i >= j} m[b, i, j] x[b, i, c]: with m = ds, x = q it is gk; with m = probs,
// x = g it is gv.
template <typename T>
__global__ void attn_col_kernel(T* __restrict__ out, const dacc_t<T>* __restrict__ m, const T* __restrict__ x,
                                int64_t B, int64_t Tn, int64_t C) {
  using A = dacc_t<T>;
  const int64_t total = B * Tn * C;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = o % C, row = o / C, b = row / Tn, j = row % Tn;
    A acc = 0;
    for (int64_t i = j; i < Tn; ++i) acc += m[(b * Tn + i) * Tn + j] * load_acc(x[(b * Tn + i) * C + c]);
    out[o] = store_as<T>(acc);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::clamp<int64_t>(rows, 1, int64_t{1} << 30)); }

}  // namespace

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), Tn = q.size(1), D = q.size(2), Dv = v.size(2);
  if (B * Tn == 0) return;
  cudaStream_t stream = prepare(q);
  dispatch_floating(q.dtype(), "causal_attention", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    A* pp = static_cast<A*>(probs.data_ptr());
    attn_probs_kernel<T><<<row_blocks(B * Tn), kRowThreads, 0, stream>>>(pp, dptr<T0>(q), dptr<T0>(k), B, Tn, D,
                                                                         static_cast<A>(scale));
    KIRZL_CUDA_LAUNCH_CHECK();
    if (B * Tn * Dv > 0) {
      attn_row_kernel<T><<<grid_for(B * Tn * Dv, 256), 256, 0, stream>>>(dptr<T0>(out), pp, dptr<T0>(v), B, Tn, Dv);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
  });
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q,
                        const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), Tn = q.size(1), D = q.size(2), Dv = v.size(2);
  if (B * Tn == 0) return;
  cudaStream_t stream = prepare(q);
  dispatch_floating(q.dtype(), "causal_attention backward", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    const A* pp = static_cast<const A*>(probs.data_ptr());
    if (gv.defined() && B * Tn * Dv > 0) {
      attn_col_kernel<T><<<grid_for(B * Tn * Dv, 256), 256, 0, stream>>>(dptr<T0>(gv), pp, dptr<T0>(g), B, Tn, Dv);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
    if (!gq.defined() && !gk.defined()) return;
    if (D == 0) return;
    Tensor ds = empty(probs.shape(), TensorOptions{.dtype = probs.dtype(), .device = probs.device()});
    A* dsp = static_cast<A*>(ds.data_ptr());
    attn_ds_kernel<T><<<row_blocks(B * Tn), kRowThreads, 0, stream>>>(dsp, pp, dptr<T0>(g), dptr<T0>(v), B, Tn, Dv,
                                                                      static_cast<A>(scale));
    KIRZL_CUDA_LAUNCH_CHECK();
    if (gq.defined()) {
      attn_row_kernel<T><<<grid_for(B * Tn * D, 256), 256, 0, stream>>>(dptr<T0>(gq), dsp, dptr<T0>(k), B, Tn, D);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
    if (gk.defined()) {
      attn_col_kernel<T><<<grid_for(B * Tn * D, 256), 256, 0, stream>>>(dptr<T0>(gk), dsp, dptr<T0>(q), B, Tn, D);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
  });
}

void register_attention_kernels() {
  KIRZL_REGISTER_KERNEL(attention_forward, DeviceType::CUDA, &attention_forward);
  KIRZL_REGISTER_KERNEL(attention_backward, DeviceType::CUDA, &attention_backward);
}

}  // namespace kirzl::kernels::cuda
