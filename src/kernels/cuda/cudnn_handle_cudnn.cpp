// The per-thread cuDNN handles that the cuDNN-backed kernel files share (cudnn_handle.h).
#include "kernels/cuda/cudnn_handle.h"

#include <map>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cudnn_check.h"

namespace kirzl::kernels::cuda {

cudnnHandle_t cudnn_handle(int device) {
  struct Handles {
    std::map<int, cudnnHandle_t> by_device;
    ~Handles() {
      for (auto& [d, h] : by_device) {
        (void)cudaSetDevice(d);
        (void)cudnnDestroy(h);  // at exit the driver may be gone already: nothing to report
      }
    }
  };
  thread_local Handles handles;
  auto it = handles.by_device.find(device);
  if (it != handles.by_device.end()) return it->second;
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cudnnHandle_t h = nullptr;
  KIRZL_CUDNN_CHECK(cudnnCreate(&h));
  handles.by_device.emplace(device, h);
  return h;
}

}  // namespace kirzl::kernels::cuda
