// Internal: the raw CUDA handles behind kirzl::cuda::Stream / Event, for code that calls CUDA
// libraries directly (NCCL communicator, reducer, kernels).
#pragma once

#include <cuda_runtime.h>

#include "kirzl/core/error.hpp"
#include "kirzl/core/stream.hpp"

namespace kirzl::cuda_rt {

/// The stream's cudaStream_t (cudaStreamLegacy for Stream::legacy_default). Throws on an empty Stream.
inline cudaStream_t raw_stream(const cuda::Stream& s) {
  KIRZL_CHECK(s.defined(), "raw_stream: the Stream is empty (default-constructed or moved from)");
  return static_cast<cudaStream_t>(s.native_handle());
}

/// The event's cudaEvent_t, or nullptr before its first record().
inline cudaEvent_t raw_event(const cuda::Event& e) { return static_cast<cudaEvent_t>(e.native_handle()); }

/// A non-owning Stream for a raw handle on `device`.
inline cuda::Stream wrap_stream(int device, cudaStream_t s) { return cuda::Stream::from_native(device, s); }

}  // namespace kirzl::cuda_rt
