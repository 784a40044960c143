// Internal: makes a CUDA device current for a scope and restores the caller's device afterwards,
// so that kirzl calls do not change the device a user selected with cuda::set_device.
#pragma once

#include <cuda_runtime.h>

#include <new>

#include "core/cuda/cuda_check.h"

namespace kirzl::cuda_rt {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    KIRZL_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) KIRZL_CUDA_CHECK(cudaSetDevice(device));
    current_ = device;
  }
  /// For destructors and noexcept paths: failures are printed, never thrown.
  DeviceGuard(int device, std::nothrow_t) noexcept {
    KIRZL_CUDA_CHECK_NOTHROW(cudaGetDevice(&previous_));
    if (previous_ != device) KIRZL_CUDA_CHECK_NOTHROW(cudaSetDevice(device));
    current_ = device;
  }
  ~DeviceGuard() {
    if (previous_ != current_) KIRZL_CUDA_CHECK_NOTHROW(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  int current_ = 0;
};

}  // namespace kirzl::cuda_rt
