// Internal: the CUDA stream that kernels launched by this thread use on a device.
#pragma once

#include <cuda_runtime.h>

namespace kirzl::cuda_rt {

/// The current stream of the calling thread on `device` (see kirzl::cuda::Stream). Every kirzl
/// kernel, cuBLAS/cuDNN call and asynchronous copy on that device is issued on it, so work a
/// thread issues runs in the order it was issued. Defaults to the legacy default stream, which
/// orders against synchronous cudaMemcpy and every blocking stream.
cudaStream_t current_stream(int device);

}  // namespace kirzl::cuda_rt
