// CUDA kernels the core needs for factories and dtype conversion: fill and cast.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/cuda_check.h"
#include "core/cuda_runtime.h"

namespace kirzl::cuda_rt {
namespace {

// Device-side conversions through float/double, matching the host's round-to-nearest-even.
template <typename T> struct Conv {
  __device__ static T from(double v) { return static_cast<T>(v); }
  __device__ static double to(T v) { return static_cast<double>(v); }
};
template <> struct Conv<__nv_bfloat16> {
  __device__ static __nv_bfloat16 from(double v) { return __float2bfloat16_rn(static_cast<float>(v)); }
  __device__ static double to(__nv_bfloat16 v) { return __bfloat162float(v); }
};
template <> struct Conv<__half> {
  __device__ static __half from(double v) { return __float2half_rn(static_cast<float>(v)); }
  __device__ static double to(__half v) { return __half2float(v); }
};

template <typename T>
__global__ void fill_kernel(T* dst, size_t n, T value) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}

template <typename D, typename S>
__global__ void cast_kernel(D* dst, const S* src, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = Conv<D>::from(Conv<S>::to(src[i]));
}

unsigned grid_for(size_t n) {
  size_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks > 65535 * 8 ? 65535 * 8 : (blocks == 0 ? 1 : blocks));
}

template <typename F>
void dispatch_device_type(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    case DType::bf16: f(__nv_bfloat16{}); break;
    case DType::f16: f(__half{}); break;
    case DType::i32: f(int32_t{}); break;
    case DType::i64: f(int64_t{}); break;
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
  }
}

}  // namespace

void fill(void* dst, DType dtype, size_t count, double value, int device) {
  if (count == 0) return;
  require_device(device, "cuda fill");
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  dispatch_device_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<grid_for(count), 256>>>(static_cast<T*>(dst), count, Conv<T>::from(value));
  });
  KIRZL_CUDA_LAUNCH_CHECK();
  KIRZL_CUDA_CHECK(cudaDeviceSynchronize());
}

void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device) {
  if (count == 0) return;
  require_device(device, "cuda cast");
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  dispatch_device_type(dst_dtype, [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_device_type(src_dtype, [&](auto stag) {
      using S = decltype(stag);
      cast_kernel<D, S><<<grid_for(count), 256>>>(static_cast<D*>(dst), static_cast<const S*>(src), count);
    });
  });
  KIRZL_CUDA_LAUNCH_CHECK();
  KIRZL_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace kirzl::cuda_rt
