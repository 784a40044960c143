// Internal: turns CUDA runtime return codes into kirzl::Error{Cuda}.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>

#include "kirzl/core/error.hpp"

#define KIRZL_CUDA_CHECK(call)                                                                   \
  do {                                                                                           \
    cudaError_t kirzl_err_ = (call);                                                             \
    if (kirzl_err_ != cudaSuccess)                                                               \
      KIRZL_FAIL(::kirzl::ErrorCode::Cuda, #call, " failed: ", cudaGetErrorName(kirzl_err_), " (", \
                 cudaGetErrorString(kirzl_err_), ")");                                           \
  } while (0)

/// After every kernel launch: reports launch-configuration errors at the launch site.
#define KIRZL_CUDA_LAUNCH_CHECK() KIRZL_CUDA_CHECK(cudaGetLastError())

/// For destructors: never throws; prints the failure once to stderr.
#define KIRZL_CUDA_CHECK_NOTHROW(call)                                                          \
  do {                                                                                          \
    cudaError_t kirzl_err_ = (call);                                                            \
    if (kirzl_err_ != cudaSuccess)                                                              \
      std::fprintf(stderr, "kirzl: %s failed: %s (ignored in a destructor)\n", #call,           \
                   cudaGetErrorString(kirzl_err_));                                             \
  } while (0)
