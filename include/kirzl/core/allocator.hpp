// Host memory allocation: 64-byte aligned, with a cache for large blocks. CUDA device memory and
// pinned host memory have their own caching allocators: see kirzl/core/cuda.hpp (memory_stats,
// empty_cache, host_memory_stats) and Note [cuda caching allocator] in src/core/caching_allocator.h.
#pragma once

#include <cstddef>

namespace kirzl {

/// Statistics of the CPU allocator (bytes).
struct CpuAllocatorStats {
  size_t allocated = 0;       ///< in live tensors
  size_t cached = 0;          ///< freed blocks kept for reuse
  size_t peak_allocated = 0;  ///< highest `allocated` since the process started (never reset)
  size_t cache_hits = 0;      ///< allocations served from the cache
};

/// Returns a 64-byte aligned block of at least `nbytes` bytes (one byte when `nbytes` is 0), owned
/// by the caller until cpu_free. Throws Error{InvalidArgument} when the system has no memory left
/// (after emptying the cache once), or when KIRZL_CPU_CACHE_MB is malformed.
///
/// Note [cpu caching allocator]: a freshly mapped large block page-faults on first touch, which
/// costs more than the arithmetic of most elementwise ops. Blocks of 64 KiB and more are therefore
/// rounded to a size class (1/4 power-of-two steps, at most 25% waste) and kept after free for
/// the next allocation of that class, up to a cap (default 2 GiB; KIRZL_CPU_CACHE_MB overrides,
/// 0 disables). Smaller blocks go straight to aligned_alloc. Thread-safe.
void* cpu_allocate(size_t nbytes);
/// Releases a block from cpu_allocate; `nbytes` must be the size it was allocated with (it selects
/// the size class). Cacheable blocks are kept for reuse while the cache is under its cap, others go
/// back to the system. nullptr is ignored. Thread-safe.
void cpu_free(void* ptr, size_t nbytes) noexcept;
/// Returns every cached block to the system.
void cpu_empty_cache();
/// A snapshot of the CPU allocator's statistics (process-wide, taken under its lock). Thread-safe.
CpuAllocatorStats cpu_allocator_stats();

}  // namespace kirzl
