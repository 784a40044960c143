// Internal: what every CUDA kernel file of kirzl needs: device element types, conversions to the
// f32 accumulation type, the current stream, launch sizes and the launch check.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "kirzl/core/half.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels::cuda {

/// The device type that holds a kirzl element type: BFloat16 -> __nv_bfloat16, Half -> __half
/// (same bits, so a kirzl data pointer can be reinterpret_cast to it), anything else unchanged.
template <typename T> struct DeviceTypeOf { using type = T; };
template <> struct DeviceTypeOf<BFloat16> { using type = __nv_bfloat16; };
template <> struct DeviceTypeOf<Half> { using type = __half; };
template <typename T> using device_t = typename DeviceTypeOf<T>::type;

/// Accumulation type: f32 for the 16-bit floats, the type itself otherwise.
template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<__nv_bfloat16> { using type = float; };
template <> struct AccOf<__half> { using type = float; };
template <typename T> using dacc_t = typename AccOf<T>::type;

template <typename T> __device__ __forceinline__ dacc_t<T> load_acc(T v) { return v; }
template <> __device__ __forceinline__ float load_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float load_acc(__half v) { return __half2float(v); }

/// Rounds to nearest even, like the host's BFloat16/Half constructors.
template <typename T, typename A> __device__ __forceinline__ T store_as(A v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __nv_bfloat16 store_as(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half store_as(float v) { return __float2half_rn(v); }

/// A tensor's data as the device type.
template <typename T> inline device_t<T>* dptr(const Tensor& t) { return reinterpret_cast<device_t<T>*>(t.data_ptr()); }

/// Makes `t`'s device current for the calling thread and returns its current stream.
inline cudaStream_t prepare(const Tensor& t) {
  KIRZL_CUDA_CHECK(cudaSetDevice(t.device().index()));
  return cuda_rt::current_stream(t.device().index());
}

/// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 8) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, max_blocks));
}

}  // namespace kirzl::kernels::cuda
