#include <gtest/gtest.h>

#include <cstdint>

#include <kirzl/core/allocator.hpp>
#include <kirzl/kirzl.hpp>

using namespace kirzl;

TEST(CpuAllocator, AlignedAndReusesLargeBlocks) {
  cpu_empty_cache();
  auto before = cpu_allocator_stats();
  void* a = cpu_allocate(1 << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  cpu_free(a, 1 << 20);
  EXPECT_GE(cpu_allocator_stats().cached, size_t{1} << 20);
  void* b = cpu_allocate((1 << 20) - 100);  // same size class
  EXPECT_EQ(a, b);
  EXPECT_EQ(cpu_allocator_stats().cache_hits, before.cache_hits + 1);
  cpu_free(b, (1 << 20) - 100);
  cpu_empty_cache();
  EXPECT_EQ(cpu_allocator_stats().cached, 0u);
}

TEST(CpuAllocator, TensorsReturnTheirMemory) {
  cpu_empty_cache();
  size_t live = cpu_allocator_stats().allocated;
  {
    auto t = zeros({1 << 18});
    EXPECT_GE(cpu_allocator_stats().allocated, live + (size_t{1} << 20));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64, 0u);
  }
  EXPECT_EQ(cpu_allocator_stats().allocated, live);
  auto small = zeros({3});  // small blocks are aligned too
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data_ptr()) % 64, 0u);
}
