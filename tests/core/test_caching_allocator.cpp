// The caching allocator's logic (Note [cuda caching allocator]) against a fake backend: size
// classes, reuse, split/merge, stream-ordered reuse behind events, the out-of-memory path,
// statistics, empty_cache and concurrent use. Runs on the CPU; no memory behind the pointers is
// ever touched.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/caching_allocator.h"
#include "support/expect_error.hpp"
#include "support/fake_allocator_backend.hpp"

using namespace kirzl;
using namespace kirzl::test;

TEST(CachingAllocator, RoundsRequestsToSizeClasses) {
  Fixture f;
  EXPECT_EQ(f.a->round_size(1), 512u);
  EXPECT_EQ(f.a->round_size(512), 512u);
  EXPECT_EQ(f.a->round_size(513), 1024u);
  EXPECT_EQ(f.a->round_size(1000003), 1000448u);
  EXPECT_EQ(f.a->segment_size(512), 2 * MiB);
  EXPECT_EQ(f.a->segment_size(1 * MiB), 2 * MiB);
  EXPECT_EQ(f.a->segment_size(1 * MiB + 512), 20 * MiB);
  EXPECT_EQ(f.a->segment_size(10 * MiB - 512), 20 * MiB);
  EXPECT_EQ(f.a->segment_size(10 * MiB), 10 * MiB);
  EXPECT_EQ(f.a->segment_size(10 * MiB + 512), 12 * MiB);

  void* p = f.a->allocate(1000, kA);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(f.dev->segments.begin()->second, 2 * MiB);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.allocated_bytes, 1024u);
  EXPECT_EQ(s.requested_bytes, 1000u);
  EXPECT_EQ(s.reserved_bytes, 2 * MiB);
  f.a->free(p);
  EXPECT_EQ(f.a->allocate(0, kA), nullptr);
}

TEST(CachingAllocator, FreedBlockIsReusedWithoutABackendCall) {
  Fixture f;
  void* p = f.a->allocate(3000, kA);
  f.a->free(p);
  void* q = f.a->allocate(2900, kA);  // same size class
  EXPECT_EQ(q, p);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.device_mallocs, 1u);
  EXPECT_EQ(s.cache_hits, 1u);
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(f.dev->allocate_calls, 1);
  f.a->free(q);
}

TEST(CachingAllocator, SmallBlocksAreCarvedFromOneSegment) {
  Fixture f;
  std::vector<void*> ps;
  for (int i = 0; i < 8; ++i) ps.push_back(f.a->allocate(1000, kA));
  for (int i = 1; i < 8; ++i) EXPECT_EQ(addr(ps[i]), addr(ps[i - 1]) + 1024) << i;
  EXPECT_EQ(f.a->stats().device_mallocs, 1u);
  EXPECT_EQ(f.a->stats().allocated_bytes, 8 * 1024u);
  // A 1 MiB request still fits in the same 2 MiB segment; a second one does not.
  void* big1 = f.a->allocate(1 * MiB, kA);
  void* big2 = f.a->allocate(1 * MiB, kA);
  EXPECT_EQ(f.a->stats().device_mallocs, 2u);
  EXPECT_EQ(f.a->stats().reserved_bytes, 4 * MiB);
  for (void* p : ps) f.a->free(p);
  f.a->free(big1);
  f.a->free(big2);
  EXPECT_EQ(f.a->stats().allocated_bytes, 0u);
}

TEST(CachingAllocator, LargeSegmentsSplitAndMergeBack) {
  Fixture f;
  void* a = f.a->allocate(3 * MiB, kA);  // 20 MiB segment, split
  void* b = f.a->allocate(5 * MiB, kA);  // from the rest of it
  void* c = f.a->allocate(4 * MiB, kA);
  EXPECT_EQ(f.a->stats().device_mallocs, 1u);
  EXPECT_EQ(addr(b), addr(a) + 3 * MiB);
  EXPECT_EQ(addr(c), addr(b) + 5 * MiB);
  f.a->free(b);
  f.a->empty_cache();  // the segment is still in use: nothing goes back
  EXPECT_EQ(f.a->stats().device_frees, 0u);
  // The 5 MiB hole serves a 5 MiB request (best fit before the 8 MiB tail).
  void* b2 = f.a->allocate(5 * MiB, kA);
  EXPECT_EQ(b2, b);
  f.a->free(a);
  f.a->free(c);
  f.a->free(b2);  // merges with both neighbours: the segment is one free block again
  void* whole = f.a->allocate(20 * MiB, kA);
  EXPECT_EQ(whole, a);
  EXPECT_EQ(f.a->stats().device_mallocs, 1u);
  f.a->free(whole);
  f.a->empty_cache();
  EXPECT_EQ(f.a->stats().device_frees, 1u);
  EXPECT_EQ(f.a->stats().reserved_bytes, 0u);
  EXPECT_TRUE(f.dev->segments.empty());
}

TEST(CachingAllocator, SmallRemainderIsNotSplitOffALargeBlock) {
  Fixture f;
  void* a = f.a->allocate(19 * MiB + 512 * KiB, kA);  // 20 MiB segment; 512 KiB left is not worth a block
  EXPECT_EQ(f.a->stats().allocated_bytes, 20 * MiB) << "the unsplit rest is part of the block";
  EXPECT_EQ(f.a->stats().requested_bytes, 19 * MiB + 512 * KiB);
  void* b = f.a->allocate(2 * MiB, kA);  // cannot come from a's segment
  EXPECT_EQ(f.a->stats().device_mallocs, 2u);
  f.a->free(a);
  f.a->free(b);
}

TEST(CachingAllocator, BestFitPicksTheSmallestHole) {
  Fixture f;
  void* a = f.a->allocate(4096, kA);
  void* b = f.a->allocate(1024, kA);
  void* c = f.a->allocate(2048, kA);
  void* d = f.a->allocate(1024, kA);
  f.a->free(a);
  f.a->free(c);  // holes of 4096 and 2048, separated by live b
  EXPECT_EQ(f.a->allocate(2048, kA), c);
  EXPECT_EQ(f.a->allocate(4096, kA), a);
  for (void* p : {a, b, c, d}) f.a->free(p);
}

TEST(CachingAllocator, BlocksAreReusedOnlyByTheirOwnStream) {
  Fixture f;
  void* p = f.a->allocate(1000, kA);
  f.a->free(p);
  void* q = f.a->allocate(1000, kB);
  EXPECT_NE(q, p);
  EXPECT_EQ(f.a->stats().device_mallocs, 2u) << "stream B must not take stream A's segment";
  void* r = f.a->allocate(1000, kA);
  EXPECT_EQ(r, p) << "stream A reuses its block at once";
  EXPECT_EQ(f.dev->records, 0);
  f.a->free(q);
  f.a->free(r);
}

TEST(CachingAllocator, BlockUsedOnAnotherStreamWaitsForItsEvent) {
  Fixture f;
  void* p = f.a->allocate(8192, kA);
  EXPECT_TRUE(f.a->record_stream(p, kB));
  EXPECT_TRUE(f.a->record_stream(p, kB));  // once per stream
  f.a->free(p);
  EXPECT_EQ(f.dev->records, 1);
  EXPECT_EQ(f.a->stats().pending_frees, 1u);
  EXPECT_EQ(f.a->stats().allocated_bytes, 0u);
  // While B's work may still read it, stream A gets other memory.
  void* q = f.a->allocate(8192, kA);
  EXPECT_NE(q, p);
  EXPECT_GT(f.dev->queries, 0);
  EXPECT_EQ(f.dev->syncs, 0) << "the allocator must not block outside the out-of-memory path";
  f.dev->complete_stream(kB);
  void* r = f.a->allocate(8192, kA);
  EXPECT_EQ(r, p);
  EXPECT_EQ(f.a->stats().pending_frees, 0u);
  EXPECT_EQ(f.dev->live_events(), 0) << "completed events are destroyed";
  EXPECT_EQ(f.dev->syncs, 0);
  f.a->free(q);
  f.a->free(r);
}

TEST(CachingAllocator, BlockUsedOnTwoOtherStreamsWaitsForBoth) {
  Fixture f;
  void* p = f.a->allocate(4096, kA);
  f.a->record_stream(p, kB);
  f.a->record_stream(p, kC);
  f.a->record_stream(p, kA);  // its own stream: no event needed
  f.a->free(p);
  EXPECT_EQ(f.dev->records, 2);
  f.dev->complete_stream(kB);
  void* q = f.a->allocate(4096, kA);
  EXPECT_NE(q, p);
  f.dev->complete_stream(kC);
  void* r = f.a->allocate(4096, kA);
  EXPECT_EQ(r, p);
  f.a->free(q);
  f.a->free(r);
}

// A cuda::Stream destroyed while blocks still list it (record_stream) synchronises itself and has
// the allocator forget it: freeing such a block later records nothing on the dead handle (the GPU
// run of 2026-12-04 crashed in cudaEventRecord there) and the block is reusable at once.
TEST(CachingAllocator, AForgottenStreamIsNotRecordedAtFree) {
  Fixture f;
  void* p = f.a->allocate(8192, kA);
  void* q = f.a->allocate(8192, kA);
  f.a->record_stream(p, kB);
  f.a->record_stream(q, kB);
  f.a->record_stream(q, kC);
  f.a->forget_stream(kB);
  f.a->free(p);
  EXPECT_EQ(f.dev->records, 0) << "no event may be recorded on a forgotten stream";
  EXPECT_EQ(f.a->stats().pending_frees, 0u);
  EXPECT_EQ(f.a->allocate(8192, kA), p) << "reusable at once";
  f.a->free(q);
  EXPECT_EQ(f.dev->records, 1) << "the streams not forgotten are still waited for";
  f.a->free(p);
}

TEST(CachingAllocator, RecordStreamOfAnUnknownPointerIsFalse) {
  Fixture f;
  int x = 0;
  EXPECT_FALSE(f.a->record_stream(&x, kB));
  EXPECT_FALSE(f.a->owns(&x));
  void* p = f.a->allocate(100, kA);
  EXPECT_TRUE(f.a->owns(p));
  f.a->free(&x);  // reported on stderr and ignored
  EXPECT_EQ(f.a->stats().allocated_bytes, 512u);
  f.a->free(p);
  EXPECT_FALSE(f.a->owns(p));
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheAndRetries) {
  Fixture f;
  f.dev->capacity = 21 * MiB;
  void* small = f.a->allocate(1000, kA);  // 2 MiB segment
  f.a->free(small);                       // cached, unused
  void* big = f.a->allocate(3 * MiB, kB);  // needs a 20 MiB segment: only after the cache is gone
  ASSERT_NE(big, nullptr);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.ooms, 1u);
  EXPECT_EQ(s.device_frees, 1u);
  EXPECT_EQ(s.device_mallocs, 2u);
  EXPECT_EQ(s.reserved_bytes, 20 * MiB);
  EXPECT_EQ(f.dev->failed_allocs, 1);
  f.a->free(big);
}

TEST(CachingAllocator, OutOfMemoryWaitsForPendingEventsFirst) {
  Fixture f;
  f.dev->capacity = 21 * MiB;
  void* p = f.a->allocate(1000, kA);
  f.a->record_stream(p, kC);
  f.a->free(p);  // pending on C's event, which never completes by itself
  void* big = f.a->allocate(3 * MiB, kB);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(f.dev->syncs, 1) << "the out-of-memory path waits for the pending event";
  EXPECT_EQ(f.a->stats().pending_frees, 0u);
  EXPECT_EQ(f.a->stats().device_frees, 1u);
  f.a->free(big);
}

TEST(CachingAllocator, OutOfMemoryAfterRetryIsAClearError) {
  Fixture f;
  f.dev->capacity = 64 * MiB;
  void* live = f.a->allocate(5 * MiB, kA);  // 20 MiB reserved, 5 MiB allocated
  void* cached = f.a->allocate(100, kA);
  f.a->free(cached);  // its own 2 MiB small-pool segment, unused
  size_t pib = size_t{1} << 50;
  EXPECT_KIRZL_ERROR(f.a->allocate(pib, kA), ErrorCode::Cuda, "out of memory", "fake:0", "1.00 PiB",
                     "5.00 MiB (5242880 bytes) allocated", "20.00 MiB (20971520 bytes) reserved",
                     "44.00 MiB (46137344 bytes) free", "64.00 MiB (67108864 bytes) total");
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.ooms, 1u);
  EXPECT_EQ(f.dev->failed_allocs, 2) << "one retry after emptying the cache";
  EXPECT_EQ(s.device_frees, 1u) << "the unused small segment was released";
  // The allocator still works afterwards.
  void* p = f.a->allocate(100, kA);
  EXPECT_NE(p, nullptr);
  f.a->free(p);
  f.a->free(live);
}

TEST(CachingAllocator, StatisticsTrackCurrentAndPeak) {
  Fixture f;
  void* a = f.a->allocate(2 * MiB, kA);   // 20 MiB segment
  void* b = f.a->allocate(3 * MiB, kA);   // same segment
  void* c = f.a->allocate(30 * MiB, kA);  // own 30 MiB segment
  f.a->free(a);
  f.a->free(c);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.allocated_bytes, 3 * MiB);
  EXPECT_EQ(s.peak_allocated_bytes, 35 * MiB);
  EXPECT_EQ(s.reserved_bytes, 50 * MiB);
  EXPECT_EQ(s.peak_reserved_bytes, 50 * MiB);
  EXPECT_EQ(s.segments, 2u);
  f.a->empty_cache();  // the 30 MiB segment is free; the 20 MiB one holds b
  s = f.a->stats();
  EXPECT_EQ(s.reserved_bytes, 20 * MiB);
  EXPECT_EQ(s.peak_reserved_bytes, 50 * MiB);
  EXPECT_EQ(s.device_frees, 1u);
  f.a->reset_peak_stats();
  s = f.a->stats();
  EXPECT_EQ(s.peak_allocated_bytes, 3 * MiB);
  EXPECT_EQ(s.peak_reserved_bytes, 20 * MiB);
  f.a->free(b);
  f.a->empty_cache();
  s = f.a->stats();
  EXPECT_EQ(s.reserved_bytes, 0u);
  EXPECT_EQ(s.segments, 0u);
  EXPECT_EQ(s.device_mallocs, s.device_frees);
  EXPECT_TRUE(f.dev->segments.empty());
}

TEST(CachingAllocator, TrainingLikeLoopStopsCallingTheBackend) {
  Fixture f;
  // The same sequence of activation-like sizes every step; frees in reverse order.
  std::vector<size_t> sizes = {4 * MiB, 600 * KiB, 17, 12 * MiB, 3 * MiB + 5, 1000003, 64 * KiB};
  uint64_t mallocs_after_first_step = 0, hits_after_first_step = 0;
  for (int step = 0; step < 5; ++step) {
    std::vector<void*> ps;
    for (size_t n : sizes) ps.push_back(f.a->allocate(n, kA));
    for (auto it = ps.rbegin(); it != ps.rend(); ++it) f.a->free(*it);
    if (step == 0) {
      mallocs_after_first_step = f.a->stats().device_mallocs;
      hits_after_first_step = f.a->stats().cache_hits;
    }
  }
  EXPECT_EQ(f.a->stats().device_mallocs, mallocs_after_first_step);
  EXPECT_EQ(f.a->stats().cache_hits - hits_after_first_step, 4 * sizes.size()) << "every later request is a cache hit";
}

TEST(CachingAllocator, EmptyCacheCollectsCompletedPendingBlocksWithoutBlocking) {
  Fixture f;
  void* p = f.a->allocate(50 * MiB, kA);
  f.a->record_stream(p, kB);
  f.a->free(p);
  f.a->empty_cache();
  EXPECT_EQ(f.a->stats().reserved_bytes, 50 * MiB) << "still pending on B";
  EXPECT_EQ(f.dev->syncs, 0);
  f.dev->complete_stream(kB);
  f.a->empty_cache();
  EXPECT_EQ(f.a->stats().reserved_bytes, 0u);
}

TEST(CachingAllocator, ConcurrentThreadsNeverGetOverlappingBlocks) {
  Fixture f;
  f.dev->capacity = size_t{1} << 40;  // pretend memory: no out-of-memory path here
  std::mutex live_mutex;
  std::map<uintptr_t, uintptr_t> live;  // start -> end of blocks handed out
  std::atomic<int> overlaps{0};
  auto worker = [&](int t) {
    std::mt19937 rng(t);
    std::uniform_int_distribution<size_t> small(1, 200000), large(1 * MiB, 24 * MiB);
    StreamRef stream{static_cast<uintptr_t>(0x1000 + (t % 2)), 0};  // two threads per stream
    std::vector<std::pair<void*, size_t>> mine;
    for (int i = 0; i < 3000; ++i) {
      if (mine.size() < 16 && (rng() % 3 != 0 || mine.empty())) {
        size_t n = rng() % 8 == 0 ? large(rng) : small(rng);
        void* p = f.a->allocate(n, stream);
        if (rng() % 4 == 0) f.a->record_stream(p, StreamRef{0x9000, 0});
        std::lock_guard<std::mutex> lock(live_mutex);
        uintptr_t s = addr(p), e = s + n;
        auto next = live.lower_bound(s);
        if (next != live.end() && next->first < e) ++overlaps;
        if (next != live.begin() && std::prev(next)->second > s) ++overlaps;
        live[s] = e;
        mine.emplace_back(p, n);
      } else {
        size_t k = rng() % mine.size();
        {
          std::lock_guard<std::mutex> lock(live_mutex);
          live.erase(addr(mine[k].first));
        }
        f.a->free(mine[k].first);
        mine.erase(mine.begin() + static_cast<long>(k));
      }
      if (i % 500 == 0) f.dev->complete_stream(StreamRef{0x9000, 0});
    }
    for (auto& [p, n] : mine) {
      {
        std::lock_guard<std::mutex> lock(live_mutex);
        live.erase(addr(p));
      }
      f.a->free(p);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(s.requested_bytes, 0u);
  EXPECT_EQ(s.allocations, s.cache_hits + s.device_mallocs);
  f.dev->complete_stream(StreamRef{0x9000, 0});
  f.a->empty_cache();
  EXPECT_EQ(f.a->stats().reserved_bytes, 0u) << "every segment merged back to one free block";
  EXPECT_TRUE(f.dev->segments.empty());
}

TEST(CachingAllocator, DestructorReturnsCachedSegmentsAndWaitsForEvents) {
  Fixture f;
  void* p = f.a->allocate(1000, kA);
  void* q = f.a->allocate(30 * MiB, kA);
  f.a->record_stream(q, kB);
  f.a->free(p);
  f.a->free(q);
  f.a.reset();
  EXPECT_TRUE(f.dev->segments.empty());
  EXPECT_EQ(f.dev->live_events(), 0);
}

TEST(CachingAllocator, NoCacheModeGivesEveryBlockItsOwnSegmentAndReturnsItAtOnce) {
  auto dev = std::make_shared<FakeDevice>();
  alloc::CachingAllocatorConfig config;
  config.no_cache = true;
  CachingAllocator a(std::make_unique<FakeBackend>(dev), config);
  void* p = a.allocate(1000, kA);
  void* q = a.allocate(3 * MiB, kA);
  EXPECT_EQ(dev->segments.at(addr(p)), 1024u);
  EXPECT_EQ(dev->segments.at(addr(q)), 3 * MiB);
  a.free(p);
  EXPECT_EQ(dev->segments.count(addr(p)), 0u) << "returned to the backend at once";
  a.record_stream(q, kB);
  a.free(q);
  EXPECT_EQ(dev->segments.count(addr(q)), 1u) << "still pending on stream B";
  dev->complete_stream(kB);
  void* r = a.allocate(1000, kA);  // collects the completed event
  EXPECT_EQ(dev->segments.count(addr(q)), 0u);
  cuda::MemoryStats s = a.stats();
  EXPECT_EQ(s.cache_hits, 0u);
  EXPECT_EQ(s.device_mallocs, 3u);
  EXPECT_EQ(s.device_frees, 2u);
  EXPECT_EQ(s.reserved_bytes, 1024u);
  a.free(r);
  EXPECT_TRUE(dev->segments.empty());
}

TEST(CachingAllocator, FormatsByteCounts) {
  EXPECT_EQ(alloc::format_bytes(17), "17 bytes");
  EXPECT_EQ(alloc::format_bytes(3 * MiB / 2), "1.50 MiB (1572864 bytes)");
}
