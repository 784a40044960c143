// Internal: turns CUDA runtime return codes into kirzl::Error{Cuda}.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>

#include "kirzl/core/error.hpp"

// Note [cuda last error]: a failed runtime call also leaves its error in the thread's last-error
// slot, where the next KIRZL_CUDA_LAUNCH_CHECK (cudaGetLastError) would report it again, as a
// failure of an unrelated kernel launch; after a caught error (a profiler's timing event, a
// cuDNN plan that falls back) that launch would throw although nothing is wrong with it. So each
// failure is reported once: the checks clear the slot before they throw or print. Sticky errors
// (a kernel's illegal address) are not cleared by cudaGetLastError and keep failing every call.
#define KIRZL_CUDA_CHECK(call)                                                                   \
  do {                                                                                           \
    cudaError_t kirzl_err_ = (call);                                                             \
    if (kirzl_err_ != cudaSuccess) {                                                             \
      (void)cudaGetLastError();                                                                  \
      KIRZL_FAIL(::kirzl::ErrorCode::Cuda, #call, " failed: ", cudaGetErrorName(kirzl_err_), " (", \
                 cudaGetErrorString(kirzl_err_), ")");                                           \
    }                                                                                            \
  } while (0)

/// After every kernel launch: reports launch-configuration errors at the launch site.
#define KIRZL_CUDA_LAUNCH_CHECK() KIRZL_CUDA_CHECK(cudaGetLastError())

/// For destructors: never throws; prints the failure once to stderr.
#define KIRZL_CUDA_CHECK_NOTHROW(call)                                                          \
  do {                                                                                          \
    cudaError_t kirzl_err_ = (call);                                                            \
    if (kirzl_err_ != cudaSuccess) {                                                            \
      (void)cudaGetLastError(); /* Note [cuda last error] */                                    \
      std::fprintf(stderr, "kirzl: %s failed: %s (ignored in a destructor)\n", #call,           \
                   cudaGetErrorString(kirzl_err_));                                             \
    }                                                                                           \
  } while (0)
