// Internal: the cuDNN handle of the calling thread for a device (kernels/cuda/cudnn_handle_cudnn.cpp).
// Only files compiled with cuDNN (*_cudnn.cpp, *_cudnn_frontend.cpp) include it.
#pragma once

#include <cudnn.h>

namespace kirzl::kernels::cuda {

/// The calling thread's cuDNN handle for `device`, created on first use (with the device made
/// current) and destroyed when the thread ends. One per (thread, device): cudnnSetStream changes
/// the handle, so two threads issuing on different streams must not share one.
cudnnHandle_t cudnn_handle(int device);

}  // namespace kirzl::kernels::cuda
