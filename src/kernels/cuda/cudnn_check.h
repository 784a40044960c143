// Internal: turns cuDNN status codes into kirzl::Error{Cuda}, in the style of KIRZL_CUDA_CHECK
// (core/cuda/cuda_check.h). Only files compiled with cuDNN (*_cudnn.cpp) include it.
#pragma once

#include <cudnn.h>

#include "kirzl/core/error.hpp"

#define KIRZL_CUDNN_CHECK(call)                                                                              \
  do {                                                                                                       \
    cudnnStatus_t kirzl_status_ = (call);                                                                    \
    if (kirzl_status_ != CUDNN_STATUS_SUCCESS)                                                               \
      KIRZL_FAIL(::kirzl::ErrorCode::Cuda, #call, " failed: ", cudnnGetErrorString(kirzl_status_), " (status ", \
                 static_cast<int>(kirzl_status_), ")");                                                      \
  } while (0)
