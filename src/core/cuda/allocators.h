// Internal: the process-wide caching allocators of a CUDA build, one per device plus one for
// pinned host memory (Note [cuda caching allocator]). Created on first use and never destroyed:
// tensors may outlive static destruction, and the CUDA driver may already be gone by then.
#pragma once

#include <cuda_runtime.h>

#include "core/caching_allocator.h"

namespace kirzl::cuda_rt {

/// The allocator of `device` (0 <= device < cuda::device_count(); the caller checks).
alloc::CachingAllocator& device_allocator(int device);
/// The pinned host allocator (segments from cudaHostAlloc, portable across devices).
alloc::CachingAllocator& host_allocator();
/// The allocator's view of a CUDA stream.
inline alloc::StreamRef stream_ref(cudaStream_t s, int device) {
  return {reinterpret_cast<uintptr_t>(s), device};
}

}  // namespace kirzl::cuda_rt
