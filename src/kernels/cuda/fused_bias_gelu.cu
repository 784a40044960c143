// bias + tanh-GELU on CUDA: elementwise forward; backward writes gx and, in the same pass, each
// row chunk's bias-gradient partial sums (see fused_colsum.cuh), then adds the chunks in order.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fused_colsum.cuh"
#include "kernels/cuda/gelu_tanh.cuh"
#include "kernels/cuda/nn_common.cuh"
#include "kernels/dispatch.h"
#include "kernels/fused_bias_gelu.h"

namespace kirzl::kernels::cuda {

namespace {

// h = x + bias rounded to the element type, as the unfused add() would store it.
template <typename E> __device__ __forceinline__ dacc_t<E> biased(E x, E b) {
  return load_acc(store_as<E>(load_acc(x) + load_acc(b)));
}

// Any layout: one element per step of a grid-stride loop (the bias index is a division).
template <typename E>
__global__ void bias_gelu_fwd_kernel(E* __restrict__ y, const E* __restrict__ x, const E* __restrict__ bias,
                                     int64_t total, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = store_as<E>(gelu_tanh_forward<E>(biased(x[i], bias[i % n])));
}

// store_pack as one 16-byte store: for this kernel nvcc split a Pack store (and a uint4 one) into
// 2-, 4- or 8-byte stores for every type (seen in its PTX, CUDA 13), so the words are assembled
// here and stored with st.global.v4 (p is global memory, 16-byte aligned).
__device__ __forceinline__ uint32_t bits16(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
__device__ __forceinline__ uint32_t bits16(__half v) { return __half_as_ushort(v); }
template <typename E> __device__ __forceinline__ void store_pack_wide(E* p, const dacc_t<E> (&v)[kPack<E>]) {
  uint32_t w[4];
  if constexpr (sizeof(E) == 2) {
#pragma unroll
    for (int k = 0; k < 4; ++k) w[k] = bits16(store_as<E>(v[2 * k])) | (bits16(store_as<E>(v[2 * k + 1])) << 16);
  } else if constexpr (sizeof(E) == 4) {
#pragma unroll
    for (int k = 0; k < 4; ++k) w[k] = __float_as_uint(v[k]);
  } else {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const auto b = static_cast<unsigned long long>(__double_as_longlong(v[k]));
      w[2 * k] = static_cast<uint32_t>(b);
      w[2 * k + 1] = static_cast<uint32_t>(b >> 32);
    }
  }
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(w[0]), "r"(w[1]), "r"(w[2]), "r"(w[3])
               : "memory");
}

// Note [packed bias-GELU]: where every row starts on a 16-byte boundary (n a multiple of the pack,
// aligned bases), thread (p, block row) owns the 16-byte pack p of each of its rows: it loads its
// bias pack once and walks rows blockIdx.y, blockIdx.y + gridDim.y, ..., reading and writing 16
// bytes at a time, with no division per element. Consecutive threads take consecutive packs of a
// row, so each warp reads 512 contiguous bytes. The values are those of the scalar kernel.
constexpr int kPackedThreads = 128;
constexpr int64_t kPackedRowsPerThread = 16;

template <typename E>
__global__ void __launch_bounds__(kPackedThreads)
    bias_gelu_fwd_packed_kernel(E* __restrict__ y, const E* __restrict__ x, const E* __restrict__ bias, int64_t m,
                                int64_t packs) {
  constexpr int N = kPack<E>;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * kPackedThreads + threadIdx.x;
  if (p >= packs) return;
  const int64_t n = packs * N;
  const Pack<E, N> b = *reinterpret_cast<const Pack<E, N>*>(bias + p * N);
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    const Pack<E, N> in = *reinterpret_cast<const Pack<E, N>*>(x + r * n + p * N);
    dacc_t<E> out[N];
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = gelu_tanh_forward<E>(biased(in.v[i], b.v[i]));
    store_pack_wide(y + r * n + p * N, out);
  }
}

// The product rounded on its own: without it, nvcc contracts `acc += g * grad` into one FMA when
// gx is not stored, so the bias gradient changed in its last bits with gx wanted or not (seen on
// the H200, 2026-12-04). __fmul_rn / __dmul_rn are never contracted.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Block (column block, row chunk): thread j walks its chunk's rows of column j in order.
template <typename E>
__global__ void bias_gelu_bwd_kernel(E* __restrict__ gx, dacc_t<E>* __restrict__ partial, const E* __restrict__ g,
                                     const E* __restrict__ x, const E* __restrict__ bias, int64_t m, int64_t n,
                                     int64_t rows_per_chunk) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(m, r0 + rows_per_chunk);
  const E b = bias[j];
  dacc_t<E> acc = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const dacc_t<E> v = mul_rn(load_acc(g[r * n + j]), gelu_tanh_derivative(biased(x[r * n + j], b)));
    if (gx) gx[r * n + j] = store_as<E>(v);
    acc += v;
  }
  if (partial) partial[blockIdx.y * n + j] = acc;
}

}  // namespace

void bias_gelu_forward(Tensor& y, const Tensor& x, const Tensor& bias, int64_t n) {
  const int64_t total = x.numel();
  if (total == 0) return;
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), "bias_gelu", [&]<typename T>() {
    using E = device_t<T>;
    if (pack_aligned<E>(x.data_ptr(), n) && pack_aligned<E>(y.data_ptr(), n) && pack_aligned<E>(bias.data_ptr(), n)) {
      // Note [packed bias-GELU]
      const int64_t m = total / n, packs = n / kPack<E>;
      const dim3 grid(static_cast<unsigned>((packs + kPackedThreads - 1) / kPackedThreads),
                      static_cast<unsigned>(std::clamp<int64_t>((m + kPackedRowsPerThread - 1) / kPackedRowsPerThread, 1, 65535)));
      bias_gelu_fwd_packed_kernel<E><<<grid, kPackedThreads, 0, stream>>>(dptr<T>(y), dptr<T>(x), dptr<T>(bias), m, packs);
    } else {
      bias_gelu_fwd_kernel<E><<<grid_for(total, 256), 256, 0, stream>>>(dptr<T>(y), dptr<T>(x), dptr<T>(bias), total, n);
    }
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void bias_gelu_backward(Tensor& gx, Tensor& gbias, const Tensor& g, const Tensor& x, const Tensor& bias, int64_t n) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  if (n == 0) return;
  cudaStream_t stream = prepare(x);
  const int64_t per = colsum_rows_per_chunk(m);
  const int64_t chunks = std::max<int64_t>(1, (m + per - 1) / per);
  const DType acc = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor partial = gbias.defined() ? empty({chunks, n}, {.dtype = acc, .device = x.device()}) : Tensor();
  dispatch_floating(x.dtype(), "bias_gelu_backward", [&]<typename T>() {
    using E = device_t<T>;
    using P = dacc_t<E>;
    if (m > 0) {
      const dim3 grid(static_cast<unsigned>((n + 255) / 256), static_cast<unsigned>(chunks));
      bias_gelu_bwd_kernel<E><<<grid, 256, 0, stream>>>(gx.defined() ? dptr<T>(gx) : nullptr,
                                                      partial.defined() ? static_cast<P*>(partial.data_ptr()) : nullptr,
                                                      dptr<T>(g), dptr<T>(x), dptr<T>(bias), m, n, per);
      KIRZL_CUDA_LAUNCH_CHECK();
    } else if (partial.defined()) {
      partial.zero_();
    }
    if (gbias.defined()) {
      colsum_finish_kernel<E><<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
          dptr<T>(gbias), static_cast<const P*>(partial.data_ptr()), chunks, n);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
  });
}

void register_fused_bias_gelu_kernels() {
  KIRZL_REGISTER_KERNEL(bias_gelu_forward, DeviceType::CUDA, &bias_gelu_forward);
  KIRZL_REGISTER_KERNEL(bias_gelu_backward, DeviceType::CUDA, &bias_gelu_backward);
}

}  // namespace kirzl::kernels::cuda
