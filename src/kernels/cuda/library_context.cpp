// Per-device cuBLASLt handles and per-stream workspaces (see library_context.h).
#include "kernels/cuda/library_context.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/cuda_check.h"
#include "core/cuda/stream_release.h"
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

namespace {

// Never destroyed, like the handles: freeing device memory at process exit can run after the
// CUDA runtime is gone. A stream's entry goes when the stream is destroyed (stream_release.h).
std::mutex& workspaces_mutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<std::pair<int, cudaStream_t>, Tensor>& workspaces() {
  static auto* buffers = new std::map<std::pair<int, cudaStream_t>, Tensor>;
  return *buffers;
}

void drop_workspace(void* stream, int device) noexcept {
  Tensor dropped;  // freed after the lock is released
  std::lock_guard lock(workspaces_mutex());
  auto it = workspaces().find({device, static_cast<cudaStream_t>(stream)});
  if (it == workspaces().end()) return;
  dropped = std::move(it->second);
  workspaces().erase(it);
}

}  // namespace

Tensor stream_workspace(int device, cudaStream_t stream, size_t bytes) {
  static std::once_flag hooked;
  std::call_once(hooked, [] { cuda_rt::add_stream_release_hook(&drop_workspace); });
  auto* buffers = &workspaces();
  std::lock_guard lock(workspaces_mutex());
  Tensor& buf = (*buffers)[{device, stream}];
  if (!buf.defined() || buf.nbytes() < bytes) {
    // At least 1 byte (a valid pointer), and grown by doubling so alternating sizes settle quickly.
    size_t size = buf.defined() ? std::max(bytes, 2 * buf.nbytes()) : std::max<size_t>(bytes, 1);
    buf = empty({static_cast<int64_t>(size)}, {.dtype = DType::u8, .device = Device::cuda(device)});
  }
  return buf;
}

}  // namespace kirzl::kernels::cuda
