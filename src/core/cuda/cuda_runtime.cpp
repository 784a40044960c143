// CUDA runtime calls of the core (device memory, copies). Built only with the CUDA toolkit; a
// GPU is needed only when one of these is called with a CUDA tensor.
#include "core/cuda_runtime.h"

#include <cuda_runtime.h>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "kirzl/core/device.hpp"

namespace kirzl {

int cuda::device_count() noexcept {
  // Asked once: the answer cannot change in a process, and cudaGetDeviceCount is not free.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // no driver / no device: clear the sticky error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace cuda_rt {

void require_device(int index, const char* what) {
  int n = cuda::device_count();
  KIRZL_CHECK_CODE(n > 0, ErrorCode::Unsupported, what, ": cuda:", index,
                   " requested, but no CUDA device is available on this machine");
  KIRZL_CHECK(index >= 0 && index < n, what, ": cuda:", index, " requested, but only ", n,
              " CUDA device(s) are visible (cuda:0 .. cuda:", n - 1, ")");
}

void* malloc(size_t nbytes, int device) {
  require_device(device, "cuda malloc");
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, nbytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    KIRZL_FAIL(ErrorCode::Cuda, "cudaMalloc of ", nbytes, " bytes on cuda:", device, " failed: ",
               cudaGetErrorString(err), " (", free_b, " of ", total_b, " bytes free)");
  }
  return p;
}

void free(void* ptr, int device) noexcept {
  KIRZL_CUDA_CHECK_NOTHROW(cudaSetDevice(device));
  KIRZL_CUDA_CHECK_NOTHROW(cudaFree(ptr));
}

void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  require_device(device, "cuda memcpy");
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                      : cudaMemcpyDeviceToDevice;
  KIRZL_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, k));
}

}  // namespace cuda_rt
}  // namespace kirzl
