// See Note [cpu caching allocator].
#include "kirzl/core/allocator.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/environment.h"
#include "kirzl/core/error.hpp"

namespace kirzl {

namespace {

constexpr size_t kAlignment = 64;        // Note [cpu alignment] in storage.cpp
constexpr size_t kCacheMin = 64 * 1024;  // below this, malloc's own bins are fast enough

size_t size_class(size_t n) {
  if (n < kCacheMin) return (n + kAlignment - 1) / kAlignment * kAlignment;
  // Round up to a quarter step of the enclosing power of two.
  size_t top = std::bit_floor(n);
  size_t step = top / 4;
  return (n + step - 1) / step * step;
}

size_t cache_limit() {
  static const size_t limit = [] {
    if (auto mb = env::integer("KIRZL_CPU_CACHE_MB")) return static_cast<size_t>(*mb) << 20;
    return size_t{2} << 30;
  }();
  return limit;
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;
  CpuAllocatorStats stats;
};

Cache& cache() {
  // Never destroyed: tensors with static storage duration may be freed after main returns.
  static Cache* c = new Cache();
  return *c;
}

}  // namespace

void* cpu_allocate(size_t nbytes) {
  // The first read of KIRZL_CPU_CACHE_MB happens here, where a bad value may throw, not in the
  // noexcept cpu_free (a block is always allocated before it is freed).
  (void)cache_limit();
  size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  if (cls >= kCacheMin) {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached -= cls;
      c.stats.allocated += cls;
      c.stats.peak_allocated = std::max(c.stats.peak_allocated, c.stats.allocated);
      ++c.stats.cache_hits;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, cls);
  if (!p && cls >= kCacheMin) {
    cpu_empty_cache();  // memory may be sitting in the cache
    p = std::aligned_alloc(kAlignment, cls);
  }
  KIRZL_CHECK_CODE(p != nullptr, ErrorCode::InvalidArgument, "cpu allocator: cannot allocate ", nbytes,
                   " bytes of host memory");
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.allocated += cls;
  c.stats.peak_allocated = std::max(c.stats.peak_allocated, c.stats.allocated);
  return p;
}

void cpu_free(void* ptr, size_t nbytes) noexcept {
  if (!ptr) return;
  size_t cls = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.allocated -= cls;
    if (cls >= kCacheMin && c.stats.cached + cls <= cache_limit()) {
      try {
        c.free_blocks[cls].push_back(ptr);
        c.stats.cached += cls;
        return;
      } catch (...) {
        // out of memory for the bookkeeping: fall through and free the block
      }
    }
  }
  std::free(ptr);
}

void cpu_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cls, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.stats.cached = 0;
}

CpuAllocatorStats cpu_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

}  // namespace kirzl
