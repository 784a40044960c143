// Internal: turns NCCL return codes into kirzl::Error{Nccl}, with NCCL's own explanation.
#pragma once

#include <nccl.h>

#include "kirzl/core/error.hpp"

/// Checks an NCCL call; the message has the call, ncclGetErrorString and ncclGetLastError (the
/// detail NCCL keeps for the last failure of this thread).
#define KIRZL_NCCL_CHECK(call)                                                                        \
  do {                                                                                                \
    ncclResult_t kirzl_nccl_err_ = (call);                                                            \
    if (kirzl_nccl_err_ != ncclSuccess) {                                                             \
      const char* kirzl_nccl_last_ = ncclGetLastError(nullptr);                                       \
      KIRZL_FAIL(::kirzl::ErrorCode::Nccl, #call, " failed: ", ncclGetErrorString(kirzl_nccl_err_),   \
                 (kirzl_nccl_last_ && *kirzl_nccl_last_ ? std::string(" (") + kirzl_nccl_last_ + ")" \
                                                        : std::string()));                            \
    }                                                                                                 \
  } while (0)
