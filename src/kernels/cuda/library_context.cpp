// Per-device cuBLASLt handles and per-stream workspaces (see library_context.h).
#include "kernels/cuda/library_context.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cublas_check.h"

namespace kirzl::kernels::cuda {

cublasLtHandle_t cublaslt_handle(int device) {
  // Leaked on purpose (see the header): a function-local heap object is never destroyed.
  static std::mutex* mu = new std::mutex;
  static auto* handles = new std::map<int, cublasLtHandle_t>;
  std::lock_guard lock(*mu);
  auto it = handles->find(device);
  if (it != handles->end()) return it->second;
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cublasLtHandle_t h = nullptr;
  KIRZL_CUBLAS_CHECK(cublasLtCreate(&h));
  handles->emplace(device, h);
  return h;
}

Tensor stream_workspace(int device, cudaStream_t stream, size_t bytes) {
  // Never destroyed, like the handles: freeing device memory at process exit can run after the
  // CUDA runtime is gone. The map grows with the number of distinct streams used for library calls.
  static std::mutex* mu = new std::mutex;
  static auto* buffers = new std::map<std::pair<int, cudaStream_t>, Tensor>;
  std::lock_guard lock(*mu);
  Tensor& buf = (*buffers)[{device, stream}];
  if (!buf.defined() || buf.nbytes() < bytes) {
    // At least 1 byte (a valid pointer), and grown by doubling so alternating sizes settle quickly.
    size_t size = buf.defined() ? std::max(bytes, 2 * buf.nbytes()) : std::max<size_t>(bytes, 1);
    buf = empty({static_cast<int64_t>(size)}, {.dtype = DType::u8, .device = Device::cuda(device)});
  }
  return buf;
}

}  // namespace kirzl::kernels::cuda
