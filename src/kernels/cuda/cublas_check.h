// Internal: turns cuBLAS / cuBLASLt status codes into kirzl::Error{Cuda}, in the style of
// KIRZL_CUDA_CHECK (core/cuda/cuda_check.h).
#pragma once

#include <cublas_api.h>

#include "kirzl/core/error.hpp"

#define KIRZL_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                  \
    cublasStatus_t kirzl_status_ = (call);                                                              \
    if (kirzl_status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      KIRZL_FAIL(::kirzl::ErrorCode::Cuda, #call, " failed: ", cublasGetStatusName(kirzl_status_), " (", \
                 cublasGetStatusString(kirzl_status_), ")");                                            \
  } while (0)
