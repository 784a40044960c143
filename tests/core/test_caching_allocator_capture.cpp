// The caching allocator during a CUDA graph capture (Note [cuda graph memory]) against the fake
// backend: the capture's private pool, reuse within the capture, memory held until the graph dies,
// no event calls and no segment released by the capturing thread, frees of other threads. Runs on
// the CPU; no memory behind the pointers is ever touched.
#include <gtest/gtest.h>

#include <thread>

#include "core/caching_allocator.h"
#include "support/expect_error.hpp"
#include "support/fake_allocator_backend.hpp"

using namespace kirzl;
using namespace kirzl::test;

namespace {

const StreamRef kPool{0x900, 0};  // the Graph's private capture stream

}  // namespace

TEST(CachingAllocatorCapture, CaptureAllocatesFromItsPoolNotFromTheCache) {
  Fixture f;
  void* eager = f.a->allocate(1000, kA);
  f.a->free(eager);  // cached on A
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(1000, kPool);
  void* side = f.a->allocate(1000, kA);  // a side stream of the capture: still the pool
  f.a->end_capture(kPool);
  EXPECT_NE(p, eager);
  EXPECT_NE(side, eager);
  EXPECT_EQ(f.a->stats().device_mallocs, 3u) << "the pool has its own segments (one per stream)";
  void* again = f.a->allocate(1000, kA);
  EXPECT_EQ(again, eager) << "eager work keeps its cache";
  f.a->free(again);
  f.a->free(p);
  f.a->free(side);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, PoolBlockFreedDuringTheCaptureIsReusedInIt) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(4000, kPool);
  f.a->free(p);
  void* q = f.a->allocate(4000, kPool);
  EXPECT_EQ(q, p) << "the capture stream orders the reuse, as the graph does";
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
  f.a->free(q);
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, PoolBlocksAreNeverHandedToEagerWork) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* small = f.a->allocate(4000, kPool);
  void* large = f.a->allocate(3 * MiB, kPool);
  f.a->free(small);
  f.a->end_capture(kPool);
  f.a->free(large);  // an output of the step, dropped after the capture
  for (StreamRef s : {kA, kB}) {
    void* a = f.a->allocate(4000, s);
    void* b = f.a->allocate(3 * MiB, s);
    EXPECT_NE(a, small);
    EXPECT_NE(b, large);
    f.a->free(a);
    f.a->free(b);
  }
  f.a->release_pool(kPool);
  void* c = f.a->allocate(3 * MiB, kA);
  EXPECT_NE(c, large) << "the pool stays keyed by the dead capture stream";
  f.a->free(c);
}

TEST(CachingAllocatorCapture, CapturingThreadMakesNoEventCalls) {
  Fixture f;
  void* used_elsewhere = f.a->allocate(1000, kA);
  f.a->record_stream(used_elsewhere, kB);
  f.a->free(used_elsewhere);  // pending on B's event
  f.dev->complete_stream(kB);
  const int queries = f.dev->queries, records = f.dev->records;
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(1000, kPool);
  f.a->record_stream(p, kC);
  f.a->free(p);
  void* q = f.a->allocate(2000, kPool);
  f.a->empty_cache();
  f.a->end_capture(kPool);
  EXPECT_EQ(f.dev->queries, queries) << "cudaEventQuery from the capturing thread";
  EXPECT_EQ(f.dev->records, records) << "cudaEventRecord from the capturing thread";
  EXPECT_EQ(f.dev->syncs, 0);
  EXPECT_EQ(f.a->stats().pending_frees, 1u);
  void* r = f.a->allocate(1000, kA);  // after the capture the pending free is collected
  EXPECT_GT(f.dev->queries, queries);
  EXPECT_EQ(r, used_elsewhere);
  f.a->free(r);
  f.a->free(q);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, PoolBlockUsedOnAnotherStreamIsHeldUntilTheGraphDies) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(1000, kPool);
  f.a->record_stream(p, kB);
  const size_t allocated = f.a->stats().allocated_bytes;
  f.a->free(p);
  EXPECT_EQ(f.a->stats().graph_held_frees, 1u);
  EXPECT_EQ(f.a->stats().allocated_bytes, allocated - 1024);
  void* q = f.a->allocate(1000, kPool);
  EXPECT_NE(q, p) << "the graph does not order B's use before a reuse";
  f.a->end_capture(kPool);
  const int records = f.dev->records;
  f.a->release_pool(kPool);
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
  EXPECT_EQ(f.dev->records, records + 1) << "its free records B's event once the graph is gone";
  EXPECT_EQ(f.a->stats().pending_frees, 1u);
  f.a->free(q);
}

// A block held for a graph is freed at release_pool, with an event on each other stream that used
// it; a stream destroyed in between (cuda::Stream's destructor waits for its work, then calls
// forget_stream) must not get one: its handle is dead (or already another stream's).
TEST(CachingAllocatorCapture, HeldBlockForgetsAStreamDestroyedBeforeTheGraph) {
  Fixture f;
  void* eager = f.a->allocate(1000, kA);
  f.a->record_stream(eager, kC);  // also used on C
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(1000, kPool);
  f.a->record_stream(p, kB);  // also used on a side stream of the capture
  f.a->free(p);
  f.a->free(eager);
  f.a->end_capture(kPool);
  EXPECT_EQ(f.a->stats().graph_held_frees, 2u);
  f.a->forget_stream(kB);
  f.a->forget_stream(kC);
  const int records = f.dev->records;
  f.a->release_pool(kPool);
  EXPECT_EQ(f.dev->records, records) << "an event was recorded on a destroyed stream";
  EXPECT_EQ(f.a->stats().pending_frees, 0u);
  void* again = f.a->allocate(1000, kA);
  EXPECT_EQ(again, eager) << "free at once: its other uses ended with their streams";
  f.a->free(again);
}

// The graph runs a forked stream's work concurrently with the capture stream's: a pool block goes
// back only to the list of the stream it was allocated on, whose later captured work the graph
// orders after its earlier uses (as eager reuse is ordered by the stream).
TEST(CachingAllocatorCapture, SideStreamAllocationIsReusedOnlyOnItsStream) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* side = f.a->allocate(1000, kB);
  f.a->free(side);
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
  void* p = f.a->allocate(1000, kPool);
  EXPECT_NE(p, side) << "a side stream's block handed to the capture stream";
  void* again = f.a->allocate(1000, kB);
  EXPECT_EQ(again, side) << "B's later captured work is ordered after its earlier uses";
  f.a->free(again);
  f.a->free(p);
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
}

TEST(CachingAllocatorCapture, CaptureStreamsFreedBlockIsNotHandedToASideStream) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* p = f.a->allocate(1000, kPool);  // written by the capture stream's work
  f.a->free(p);
  void* side = f.a->allocate(1000, kB);  // B was forked before: the graph does not order it after p's use
  EXPECT_NE(side, p) << "a block the capture stream just used handed to a concurrent side stream";
  void* c = f.a->allocate(1000, kC);
  EXPECT_NE(c, p);
  EXPECT_NE(c, side);
  f.a->free(side);
  f.a->free(c);
  f.a->end_capture(kPool);
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 0) << "the side streams' segments belong to the live graph too";
  f.a->release_pool(kPool);
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 3) << "the pool's segments of every stream go back once the graph is gone";
}

TEST(CachingAllocatorCapture, BlockFromBeforeTheCaptureIsHeldUntilTheGraphDies) {
  Fixture f;
  void* weights = f.a->allocate(3 * MiB, kA);
  const size_t allocated = f.a->stats().allocated_bytes;
  f.a->begin_capture(kPool);
  f.a->free(weights);  // e.g. zero_grad(set_to_none) inside the captured step
  f.a->end_capture(kPool);
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.graph_held_frees, 1u);
  EXPECT_EQ(s.allocated_bytes, allocated - 3 * MiB) << "held blocks are not allocated to tensors";
  EXPECT_EQ(s.reserved_bytes, 20 * MiB);
  void* eager = f.a->allocate(3 * MiB, kA);
  EXPECT_NE(eager, weights) << "a replay may still use it";
  f.a->free(eager);
  f.a->empty_cache();
  EXPECT_EQ(f.a->stats().segments, 1u) << "the held block's segment stays";
  f.a->release_pool(kPool);
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
  void* later = f.a->allocate(3 * MiB, kA);
  EXPECT_EQ(later, weights) << "back on its stream's free list once the graph is gone";
  f.a->free(later);
}

TEST(CachingAllocatorCapture, HeldBlockIsNotMergedIntoAFreeNeighbour) {
  Fixture f;
  void* held = f.a->allocate(1000, kA);
  void* neighbour = f.a->allocate(1000, kA);
  f.a->begin_capture(kPool);
  f.a->free(held);
  f.a->end_capture(kPool);
  f.a->free(neighbour);  // merges with the rest of the segment, not with the held block before it
  void* p = f.a->allocate(2000, kA);
  EXPECT_NE(p, held);
  f.a->free(p);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, ReleasingOnePoolKeepsTheOthersBlocksHeld) {
  Fixture f;
  const StreamRef pool2{0xa00, 0};
  void* x = f.a->allocate(1000, kA);
  void* y = f.a->allocate(1000, kA);
  f.a->begin_capture(kPool);
  f.a->free(x);
  f.a->end_capture(kPool);
  f.a->begin_capture(pool2);
  f.a->free(y);
  f.a->end_capture(pool2);
  f.a->release_pool(kPool);
  EXPECT_EQ(f.a->stats().graph_held_frees, 1u);
  void* a = f.a->allocate(1000, kA);
  void* b = f.a->allocate(1000, kA);
  EXPECT_EQ(a, x);
  EXPECT_NE(b, y);
  f.a->release_pool(pool2);
  f.a->free(a);
  f.a->free(b);
}

TEST(CachingAllocatorCapture, OtherThreadsFreeAndQueryAsAlways) {
  Fixture f;
  void* theirs = f.a->allocate(1000, kB);
  void* used_elsewhere = f.a->allocate(5000, kB);
  f.a->record_stream(used_elsewhere, kC);
  f.a->begin_capture(kPool);
  void* mine = f.a->allocate(1000, kPool);
  std::thread other([&] {
    f.a->free(used_elsewhere);  // records C's event: this thread does not capture
    f.dev->complete_stream(kC);
    f.a->free(theirs);
    EXPECT_EQ(f.a->allocate(1000, kB), theirs) << "an ordinary free of another thread is reused at once";
    EXPECT_EQ(f.a->allocate(5000, kB), used_elsewhere) << "its pending free is queried and collected";
  });
  other.join();
  EXPECT_EQ(f.a->stats().graph_held_frees, 0u);
  f.a->free(mine);
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
  f.a->free(theirs);
  f.a->free(used_elsewhere);
}

TEST(CachingAllocatorCapture, AGlobalCaptureKeepsEveryThreadAwayFromEvents) {
  // cudaStreamCaptureModeGlobal forbids unsafe calls (event queries among them) on every thread
  // while the capture runs: another thread's allocations and frees must not touch events then.
  Fixture f;
  void* pending = f.a->allocate(5000, kB);
  f.a->record_stream(pending, kC);
  f.a->free(pending);  // before the capture: C's event recorded, not yet complete
  void* used_elsewhere = f.a->allocate(7000, kB);
  f.a->record_stream(used_elsewhere, kC);
  f.a->begin_capture(kPool, /*global=*/true);
  const int records = f.dev->records, queries = f.dev->queries, syncs = f.dev->syncs;
  std::thread other([&] {
    f.a->free(used_elsewhere);            // would record an event on C
    void* q = f.a->allocate(1000, kB);    // would query the pending event
    f.a->empty_cache();                   // would query too
    f.a->free(q);
  });
  other.join();
  EXPECT_EQ(f.dev->records, records) << "an event was recorded during a global capture";
  EXPECT_EQ(f.dev->queries, queries) << "an event was queried during a global capture";
  EXPECT_EQ(f.dev->syncs, syncs);
  EXPECT_EQ(f.a->stats().pending_frees, 2u) << "the earlier pending free and the deferred one";
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
  // After the capture the deferred free records its event, and both become free once C completes.
  void* r = f.a->allocate(1000, kA);
  EXPECT_EQ(f.dev->records, records + 1) << "the deferred free's event is recorded after the capture";
  f.dev->complete_stream(kC);
  f.a->free(r);
  void* r2 = f.a->allocate(1000, kA);  // collects the completed events
  EXPECT_EQ(f.a->stats().pending_frees, 0u);
  const uint64_t mallocs = f.a->stats().device_mallocs;
  void* again = f.a->allocate(12000, kB);
  EXPECT_EQ(f.a->stats().device_mallocs, mallocs) << "the deferred block (merged with its neighbours) is reused";
  f.a->free(again);
  f.a->free(r2);
}

TEST(CachingAllocatorCapture, AThreadLocalCaptureLeavesOtherThreadsEventsAlone) {
  Fixture f;
  void* used_elsewhere = f.a->allocate(7000, kB);
  f.a->record_stream(used_elsewhere, kC);
  f.a->begin_capture(kPool);  // thread-local, the default
  const int records = f.dev->records;
  std::thread other([&] { f.a->free(used_elsewhere); });
  other.join();
  EXPECT_EQ(f.dev->records, records + 1) << "another thread's free records its event at once";
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, NoSegmentIsReleasedWhileAnyThreadCaptures) {
  Fixture f;
  void* p = f.a->allocate(1000, kA);
  f.a->free(p);
  f.a->begin_capture(kPool);
  std::thread other([&] { f.a->empty_cache(); });  // cudaFree would synchronise the capturing device
  other.join();
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 0);
  EXPECT_TRUE(f.a->capturing());
  f.a->end_capture(kPool);
  EXPECT_FALSE(f.a->capturing());
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 1);
}

TEST(CachingAllocatorCapture, NoCacheModeKeepsFreedSegmentsDuringTheCapture) {
  auto dev = std::make_shared<FakeDevice>();
  CachingAllocator a(std::make_unique<FakeBackend>(dev), {.no_cache = true});
  a.begin_capture(kPool);
  a.free(a.allocate(1000, kPool));
  EXPECT_EQ(dev->release_calls, 0);
  a.end_capture(kPool);
  a.release_pool(kPool);
  a.empty_cache();
  EXPECT_EQ(dev->release_calls, 1);
}

// Every replay writes the pool's segments, also those whose blocks were all freed within the
// capture (activations): while the graph lives, neither empty_cache() nor another allocation's
// out-of-memory retry may hand them back to the driver (cudaFree; the next cudaMalloc could return
// the same addresses to eager work that a replay then overwrites).
TEST(CachingAllocatorCapture, LiveGraphsFreeSegmentsStayReserved) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* activation = f.a->allocate(3 * MiB, kPool);  // a 20 MiB segment of the pool
  void* small = f.a->allocate(4000, kPool);           // a 2 MiB one
  f.a->free(small);
  f.a->free(activation);  // both segments are entirely free from here on, and replays still use them
  f.a->end_capture(kPool);
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 0) << "a live graph's segment went back to the driver";
  EXPECT_EQ(f.a->stats().reserved_bytes, 22 * MiB);
  // Eager work running out of memory may not take them either.
  f.dev->capacity = 30 * MiB;
  EXPECT_KIRZL_ERROR(f.a->allocate(3 * MiB, kA), ErrorCode::Cuda, "out of memory");
  EXPECT_EQ(f.dev->release_calls, 0) << "the out-of-memory retry freed a live graph's segment";
  f.a->release_pool(kPool);  // the graph is gone
  f.a->empty_cache();
  EXPECT_EQ(f.dev->release_calls, 2);
  EXPECT_EQ(f.a->stats().reserved_bytes, 0u);
}

TEST(CachingAllocatorCapture, NoCacheModeKeepsTheLiveGraphsSegments) {
  auto dev = std::make_shared<FakeDevice>();
  CachingAllocator a(std::make_unique<FakeBackend>(dev), {.no_cache = true});
  a.begin_capture(kPool);
  void* out = a.allocate(1000, kPool);  // the step's output
  a.end_capture(kPool);
  a.free(out);  // dropped while the graph lives: replays still write it
  EXPECT_EQ(dev->release_calls, 0);
  a.empty_cache();
  EXPECT_EQ(dev->release_calls, 0);
  a.release_pool(kPool);
  a.empty_cache();
  EXPECT_EQ(dev->release_calls, 1);
}

TEST(CachingAllocatorCapture, GraphPoolGoesBackToTheDriverAfterItDies) {
  Fixture f;
  f.a->begin_capture(kPool);
  void* out = f.a->allocate(3 * MiB, kPool);  // the step's output, read after each replay
  void* tmp = f.a->allocate(1000, kPool);
  f.a->free(tmp);
  f.a->end_capture(kPool);
  f.a->release_pool(kPool);
  f.a->free(out);
  f.a->empty_cache();
  cuda::MemoryStats s = f.a->stats();
  EXPECT_EQ(s.reserved_bytes, 0u);
  EXPECT_EQ(s.segments, 0u);
  EXPECT_EQ(f.dev->used, 0u);
}

TEST(CachingAllocatorCapture, OutOfMemoryDuringTheCaptureIsAClearErrorThatWaitsForNothing) {
  Fixture f;
  f.dev->capacity = 24 * MiB;
  void* p = f.a->allocate(1000, kA);
  f.a->record_stream(p, kB);
  f.a->free(p);  // a pending event the ordinary out-of-memory path would wait for
  void* cached = f.a->allocate(100, kC);
  f.a->free(cached);
  f.a->begin_capture(kPool);
  EXPECT_KIRZL_ERROR(f.a->allocate(30 * MiB, kPool), ErrorCode::Cuda, "out of memory", "during CUDA graph capture",
                     "empty_cache");
  f.a->end_capture(kPool);
  EXPECT_EQ(f.dev->syncs, 0);
  EXPECT_EQ(f.dev->release_calls, 0);
  EXPECT_EQ(f.a->stats().ooms, 1u);
  f.a->release_pool(kPool);
}

TEST(CachingAllocatorCapture, CapturesDoNotNest) {
  Fixture f;
  f.a->begin_capture(kPool);
  EXPECT_KIRZL_ERROR(f.a->begin_capture(StreamRef{0xa00, 0}), ErrorCode::InvalidArgument, "already capturing");
  std::thread other([&] {
    EXPECT_KIRZL_ERROR(f.a->begin_capture(kPool), ErrorCode::InvalidArgument, "pool is already in use");
  });
  other.join();
  f.a->end_capture(kPool);
}
