// bias + tanh-GELU on CUDA: elementwise forward; backward writes gx and, in the same pass, each
// row chunk's bias-gradient partial sums (see fused_colsum.cuh), then adds the chunks in order.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fused_colsum.cuh"
#include "kernels/dispatch.h"
#include "kernels/fused_bias_gelu.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

template <typename A> __device__ __forceinline__ A gelu_tanh(A h) {
  return A(0.5) * h * (A(1) + tanh(A(kSqrt2OverPi) * (h + A(kCubic) * h * h * h)));
}
template <typename A> __device__ __forceinline__ A gelu_tanh_grad(A h) {
  const A h2 = h * h;
  const A t = tanh(A(kSqrt2OverPi) * (h + A(kCubic) * h2 * h));
  const A du = A(kSqrt2OverPi) * (A(1) + A(3 * kCubic) * h2);
  return A(0.5) * (A(1) + t) + A(0.5) * h * (A(1) - t * t) * du;
}

// h = x + bias rounded to the element type, as the unfused add() would store it.
template <typename E> __device__ __forceinline__ dacc_t<E> biased(E x, E b) {
  return load_acc(store_as<E>(load_acc(x) + load_acc(b)));
}

template <typename E>
__global__ void bias_gelu_fwd_kernel(E* __restrict__ y, const E* __restrict__ x, const E* __restrict__ bias,
                                     int64_t total, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = store_as<E>(gelu_tanh(biased(x[i], bias[i % n])));
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
    const dacc_t<E> v = mul_rn(load_acc(g[r * n + j]), gelu_tanh_grad(biased(x[r * n + j], b)));
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
    bias_gelu_fwd_kernel<E><<<grid_for(total, 256), 256, 0, stream>>>(dptr<T>(y), dptr<T>(x), dptr<T>(bias), total, n);
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
