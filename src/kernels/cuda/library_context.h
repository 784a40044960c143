// Internal: per-device state that the CUDA library calls (cuBLASLt, cuDNN) share: the cuBLASLt
// handle and a scratch workspace per stream.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "kirzl/tensor.hpp"

namespace kirzl::kernels::cuda {

/// The cuBLASLt handle of `device`, created on first use (with the device made current) and kept
/// for the life of the process: destroying it from a static destructor could run after the CUDA
/// runtime has shut down. Thread-safe. A cuBLASLt handle holds no stream, so one handle serves
/// every stream and thread of the device.
cublasLtHandle_t cublaslt_handle(int device);

/// Scratch memory for library calls issued on `stream` of `device`: a u8 device tensor of at least
/// `bytes` bytes. One buffer per (device, stream): calls on one stream run in order, so they can
/// share it, while calls on different streams (other threads) get different buffers. The buffer
/// only grows; when it grows, callers still holding the old tensor keep it alive until they drop
/// it. The returned tensor must be used only by work issued on `stream`. Thread-safe.
Tensor stream_workspace(int device, cudaStream_t stream, size_t bytes);

}  // namespace kirzl::kernels::cuda
