// Pinned staging buffers of the MPI backend for CUDA tensors. See src/comm/host_staging.h.
#include <cuda_runtime.h>

#include <algorithm>

#include "comm/host_staging.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"

namespace kirzl::comm::detail {

HostStaging::~HostStaging() {
  if (ptr_) KIRZL_CUDA_CHECK_NOTHROW(cudaFreeHost(ptr_));
}

void* HostStaging::reserve(size_t bytes) {
  if (bytes <= capacity_ && ptr_) return ptr_;
  if (ptr_) KIRZL_CUDA_CHECK(cudaFreeHost(ptr_));
  ptr_ = nullptr;
  capacity_ = 0;
  const size_t want = std::max<size_t>(bytes, 1 << 20);
  KIRZL_CUDA_CHECK(cudaHostAlloc(&ptr_, want, cudaHostAllocPortable));
  capacity_ = want;
  return ptr_;
}

void HostStaging::abandon() {
  ptr_ = nullptr;
  capacity_ = 0;
}

void HostStaging::to_host(void* dst, const Tensor& src) {
  if (src.nbytes() == 0) return;
  const int dev = src.device().index();
  cuda_rt::DeviceGuard ds(dev);
  cudaStream_t s = cuda_rt::current_stream(dev);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst, src.data_ptr(), src.nbytes(), cudaMemcpyDeviceToHost, s));
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(s));
}

void HostStaging::to_device(Tensor& dst, const void* src) {
  if (dst.nbytes() == 0) return;
  const int dev = dst.device().index();
  cuda_rt::DeviceGuard ds(dev);
  cudaStream_t s = cuda_rt::current_stream(dev);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src, dst.nbytes(), cudaMemcpyHostToDevice, s));
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(s));
}

void HostStaging::sync_current_stream(int device) {
  cuda_rt::DeviceGuard ds(device);
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::current_stream(device)));
}

}  // namespace kirzl::comm::detail
