// GPU tests of the CUDA runtime: the caching allocator on a real device (no cudaMalloc in the
// steady state, peaks, empty_cache, out-of-memory message, deferred reuse behind events), streams
// and events, pinned memory and asynchronous copies, device properties. Label `gpu`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

#if KIRZL_HAS_CUDA
#include <cuda_runtime.h>

#include "core/cuda/cuda_check.h"
#endif

using namespace kirzl;
using kirzl::testing::all_close;

namespace {

constexpr size_t MiB = size_t{1} << 20;

// Queues a few milliseconds of device work on the current stream of cuda:0 (large device copies),
// so that what follows on that stream is still pending when the host looks.
void keep_stream_busy(Tensor& a, Tensor& b, int rounds = 16) {
  for (int i = 0; i < rounds; ++i) {
    b.copy_(a);
    a.copy_(b);
  }
}

// Under KIRZL_CUDA_NO_CACHE=1 (compute-sanitizer runs) nothing is cached: tests of caching skip.
#define SKIP_WITHOUT_CACHING()                                                                  \
  do {                                                                                          \
    const char* v_ = std::getenv("KIRZL_CUDA_NO_CACHE");                                        \
    if (v_ && v_[0] != '\0' && v_[0] != '0') GTEST_SKIP() << "KIRZL_CUDA_NO_CACHE is set: no caching to test"; \
  } while (0)

struct BusyBuffers {
  Tensor a = empty({128 * 1024 * 1024}, {.device = Device::cuda(0)});  // 512 MiB each
  Tensor b = empty({128 * 1024 * 1024}, {.device = Device::cuda(0)});
};

// The stream-ordering tests' data: random `expected` values (host), their device copy `src`, and a
// NaN-filled `x` that land() fills late on the current stream, after busy device work; a reader on
// another stream that is not ordered after it would see NaNs.
struct LateCopy {
  explicit LateCopy(uint64_t seed) {
    Generator g(seed);
    expected = randn({kSize}, {}, &g);
    src = expected.to(Device::cuda(0));
    x = full({kSize}, std::nan(""), {.device = Device::cuda(0)});
    cuda::synchronize(0);
  }
  void land() {
    keep_stream_busy(busy.a, busy.b);
    x.copy_(src);
  }
  static constexpr int64_t kSize = 1000003;
  Tensor expected, src, x;
  BusyBuffers busy;
};

}  // namespace

TEST(CudaRuntime, TrainingLikeLoopDoesNoDeviceMallocAfterWarmUp) {
  KIRZL_REQUIRE_GPU();
  SKIP_WITHOUT_CACHING();
  const Device d = Device::cuda(0);
  Generator g(3);
  auto step = [&] {
    // Activation-like sizes, odd on purpose; intermediate tensors die in varying order.
    std::vector<Tensor> live;
    for (int64_t n : {int64_t{17}, int64_t{1000003}, int64_t{257}, int64_t{3 << 20}, int64_t{65536}, int64_t{12345678}}) {
      live.push_back(empty({n}, {.device = d}));
      if (live.size() % 3 == 0) live.erase(live.begin());
    }
    Tensor x = randn({64, 129}, {}, &g).to(d);
    Tensor y = x.to(DType::bf16).to(DType::f32);
    return y.to(Device::cpu());
  };
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize(0);
  cuda::MemoryStats warm = cuda::memory_stats(0);
  for (int i = 0; i < 20; ++i) step();
  cuda::MemoryStats after = cuda::memory_stats(0);
  EXPECT_EQ(after.device_mallocs, warm.device_mallocs) << "cudaMalloc in the steady state";
  EXPECT_EQ(after.device_frees, warm.device_frees);
  EXPECT_GE(after.cache_hits - warm.cache_hits, 20u * 9u);
  EXPECT_EQ(after.reserved_bytes, warm.reserved_bytes);
}

TEST(CudaRuntime, PeakStatisticsAndReset) {
  KIRZL_REQUIRE_GPU();
  cuda::synchronize(0);
  cuda::MemoryStats base = cuda::memory_stats(0);
  cuda::reset_peak_memory_stats(0);
  EXPECT_EQ(cuda::memory_stats(0).peak_allocated_bytes, base.allocated_bytes);
  {
    Tensor big = empty({64 * 1024 * 1024}, {.device = Device::cuda(0)});  // 256 MiB
    cuda::MemoryStats s = cuda::memory_stats(0);
    EXPECT_EQ(s.allocated_bytes, base.allocated_bytes + 256 * MiB);
    EXPECT_GE(s.peak_allocated_bytes, base.allocated_bytes + 256 * MiB);
    EXPECT_GE(s.reserved_bytes, 256 * MiB);
    EXPECT_GE(s.requested_bytes, 256 * MiB);
  }
  cuda::MemoryStats s = cuda::memory_stats(0);
  EXPECT_EQ(s.allocated_bytes, base.allocated_bytes);
  EXPECT_GE(s.peak_allocated_bytes, base.allocated_bytes + 256 * MiB) << "the peak outlives the tensor";
  cuda::reset_peak_memory_stats(0);
  s = cuda::memory_stats(0);
  EXPECT_EQ(s.peak_allocated_bytes, s.allocated_bytes);
  EXPECT_EQ(s.peak_reserved_bytes, s.reserved_bytes);
}

// Reads the device's free memory: it needs the GPU to itself (scripts/gpu-check.sh runs this
// program alone; another process allocating meanwhile fails it).
TEST(CudaRuntime, EmptyCacheGivesMemoryBackToTheDevice) {
  KIRZL_REQUIRE_GPU();
  SKIP_WITHOUT_CACHING();
  cuda::synchronize(0);
  cuda::empty_cache();
  const size_t n = 1024 * MiB;
  { Tensor t = empty({static_cast<int64_t>(n)}, {.dtype = DType::u8, .device = Device::cuda(0)}); }
  cuda::MemoryStats cached = cuda::memory_stats(0);
  cuda::MemInfo while_cached = cuda::mem_get_info(0);
  EXPECT_GE(cached.reserved_bytes, n) << "the freed block stays reserved";
  cuda::empty_cache();
  cuda::MemoryStats emptied = cuda::memory_stats(0);
  cuda::MemInfo after = cuda::mem_get_info(0);
  EXPECT_LE(emptied.reserved_bytes + n, cached.reserved_bytes);
  EXPECT_GT(emptied.device_frees, cached.device_frees);
  EXPECT_GE(after.free_bytes, while_cached.free_bytes + n - 64 * MiB) << "the driver got the memory back";
  EXPECT_EQ(after.total_bytes, while_cached.total_bytes);
}

TEST(CudaRuntime, OutOfMemoryErrorNamesSizesAndDeviceMemory) {
  KIRZL_REQUIRE_GPU();
  const int64_t pib = int64_t{1} << 50;
  uint64_t ooms = cuda::memory_stats(0).ooms;
  EXPECT_KIRZL_ERROR(empty({pib}, {.dtype = DType::u8, .device = Device::cuda(0)}), ErrorCode::Cuda, "out of memory",
                     "cuda:0", "1.00 PiB", "allocated", "reserved", "free of", "total");
  EXPECT_EQ(cuda::memory_stats(0).ooms, ooms + 1);
  // The device is still usable.
  Tensor t = full({1000}, 2.0, {.device = Device::cuda(0)});
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), std::vector<float>(1000, 2.0f));
}

// Note [cuda last error]: a failed runtime call is reported by the check that sees it, once; the
// next kernel launch's check does not report it again as its own failure.
TEST(CudaRuntime, AFailedCallIsReportedOnceNotAgainByTheNextLaunch) {
  KIRZL_REQUIRE_REAL_GPU("a CUDA runtime call that fails");
#if KIRZL_HAS_CUDA
  Tensor x = full({1000}, 1.0, {.device = Device::cuda(0)});
  cuda::synchronize(0);
  EXPECT_KIRZL_ERROR([] { KIRZL_CUDA_CHECK(cudaSetDevice(1 << 20)); }(), ErrorCode::Cuda, "cudaSetDevice",
                     "cudaErrorInvalidDevice");
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "the failure was left in the thread's last error";
  Tensor y;
  EXPECT_NO_THROW(y = add(x, x)) << "the next launch reported the earlier failure as its own";
  EXPECT_EQ(y.to(Device::cpu()).to_vector<float>(), std::vector<float>(1000, 2.0f));
#endif
}

TEST(CudaRuntime, BlockUsedOnASecondStreamWaitsForItsEvent) {
  KIRZL_REQUIRE_GPU();
  SKIP_WITHOUT_CACHING();
  cuda::synchronize(0);
  cuda::empty_cache();  // no stale free blocks that a new stream with a recycled handle could pick
  cuda::Stream s1(0), s2(0);
  BusyBuffers busy;
  cuda::synchronize(0);
  const size_t pending = cuda::memory_stats(0).pending_frees;
  cuda::StreamGuard on_s1(s1);
  Tensor a = empty({256 * 1024}, {.device = Device::cuda(0)});  // 1 MiB on s1
  void* p = a.data_ptr();
  {
    cuda::StreamGuard on_s2(s2);
    keep_stream_busy(busy.a, busy.b);  // s2 is busy for a while ...
    a.storage().record_stream(s2);     // ... and "uses" a at the end
  }
  a = Tensor();  // freed on s1 while s2 still runs
  EXPECT_EQ(cuda::memory_stats(0).pending_frees, pending + 1);
  ASSERT_FALSE(s2.query()) << "the busy work finished too early for this test to mean anything";
  Tensor b = empty({256 * 1024}, {.device = Device::cuda(0)});
  EXPECT_NE(b.data_ptr(), p) << "reused while the second stream may still use it";
  s2.synchronize();
  Tensor c = empty({256 * 1024}, {.device = Device::cuda(0)});
  EXPECT_EQ(c.data_ptr(), p) << "reusable once the second stream's event completed";
  EXPECT_EQ(cuda::memory_stats(0).pending_frees, pending);
}

TEST(CudaRuntime, BlockFreedOnItsOwnStreamIsReusedAtOnce) {
  KIRZL_REQUIRE_GPU();
  SKIP_WITHOUT_CACHING();
  cuda::synchronize(0);
  cuda::empty_cache();
  cuda::Stream s(0);
  cuda::StreamGuard guard(s);
  uint64_t mallocs = cuda::memory_stats(0).device_mallocs;
  Tensor a = full({1000}, 1.0, {.device = Device::cuda(0)});
  void* p = a.data_ptr();
  a = Tensor();
  Tensor b = full({1000}, 2.0, {.device = Device::cuda(0)});
  EXPECT_EQ(b.data_ptr(), p);
  EXPECT_EQ(cuda::memory_stats(0).device_mallocs, mallocs + 1);
  EXPECT_EQ(b.to(Device::cpu()).to_vector<float>(), std::vector<float>(1000, 2.0f));
}

TEST(CudaRuntime, StreamsAndEventsOrderAsyncCopies) {
  KIRZL_REQUIRE_GPU();
  LateCopy c(4);
  Tensor& x = c.x;
  cuda::Stream s1(0), s2(0);
  cuda::Event start(true), stop(true), written;
  {
    cuda::StreamGuard on_s1(s1);
    start.record(s1);
    c.land();  // lands late on s1
    stop.record(s1);
    written.record(s1);
  }
  s2.wait(written);  // without this, s2 would read NaNs
  Tensor y;
  {
    cuda::StreamGuard on_s2(s2);
    y = x.to(Device::cpu(), /*non_blocking=*/true);
    x.storage().record_stream(s2);
  }
  EXPECT_TRUE(y.is_pinned());
  s2.synchronize();
  EXPECT_TRUE(s2.query());
  EXPECT_TRUE(written.query());
  EXPECT_TRUE(all_close(y, c.expected, {0, 0}));
  stop.synchronize();
  EXPECT_GT(cuda::Event::elapsed_ms(start, stop), 0.0f);
  EXPECT_KIRZL_ERROR(cuda::Event::elapsed_ms(start, written), ErrorCode::InvalidArgument, "enable_timing");
}

TEST(CudaRuntime, StreamWaitsForTheWorkQueuedOnAnotherStream) {
  KIRZL_REQUIRE_GPU();
  LateCopy c(6);
  Tensor& x = c.x;
  cuda::Stream producer(0), consumer(0);
  {
    cuda::StreamGuard on_producer(producer);
    c.land();  // lands late on the producer's stream
  }
  consumer.wait(producer);  // no event of the caller's: Stream::wait(Stream) makes its own
  EXPECT_FALSE(producer.query()) << "the busy work finished too early for this test to mean anything";
  Tensor y;
  {
    cuda::StreamGuard on_consumer(consumer);
    y = x.to(Device::cpu(), /*non_blocking=*/true);
    x.storage().record_stream(consumer);
  }
  consumer.synchronize();
  EXPECT_TRUE(all_close(y, c.expected, {0, 0}));
  producer.wait(producer);  // a stream is ordered after itself: no-op
  cuda::Stream empty;
  EXPECT_KIRZL_ERROR(consumer.wait(empty), ErrorCode::InvalidArgument, "empty");
  EXPECT_KIRZL_ERROR(empty.wait(consumer), ErrorCode::InvalidArgument, "empty");
}

TEST(CudaRuntime, DefaultStreamsAreRecognised) {
  KIRZL_REQUIRE_GPU();
  cuda::Stream legacy = cuda::Stream::legacy_default(0), per_thread = cuda::Stream::per_thread_default(0);
  EXPECT_TRUE(legacy.is_legacy_default());
  EXPECT_FALSE(legacy.is_per_thread_default());
  EXPECT_TRUE(per_thread.is_per_thread_default());
  EXPECT_FALSE(per_thread.is_legacy_default());
  EXPECT_FALSE(per_thread.owns());
  EXPECT_TRUE(cuda::Stream::from_native(0, nullptr).is_legacy_default());
  EXPECT_TRUE(cuda::Stream::from_native(0, per_thread.native_handle()).is_per_thread_default());
  cuda::Stream s(0);
  EXPECT_FALSE(s.is_legacy_default());
  EXPECT_FALSE(s.is_per_thread_default());
  // The default streams order against kirzl's work both ways.
  Tensor x = full({1 << 20}, 2.0, {.device = Device::cuda(0)});
  per_thread.wait(legacy);
  legacy.wait(per_thread);
  s.wait(per_thread);
  s.synchronize();
  EXPECT_EQ(sum(x).item<double>(), 2.0 * (1 << 20));
}

TEST(CudaRuntime, CurrentStreamDefaultsToLegacyAndGuardsNestPerThread) {
  KIRZL_REQUIRE_GPU();
  cuda::Stream legacy = cuda::Stream::legacy_default(0);
  EXPECT_EQ(cuda::Stream::current(0), legacy);
  EXPECT_FALSE(legacy.owns());
  cuda::Stream s1(0), s2(0, -100);  // priority clamped to the device's range
  EXPECT_TRUE(s1.owns());
  EXPECT_LE(s2.priority(), s1.priority());
  {
    cuda::StreamGuard g1(s1);
    EXPECT_EQ(cuda::Stream::current(0), s1);
    {
      cuda::StreamGuard g2(s2);
      EXPECT_EQ(cuda::Stream::current(0), s2);
      std::thread([&] { EXPECT_EQ(cuda::Stream::current(0), legacy) << "guards are per thread"; }).join();
    }
    EXPECT_EQ(cuda::Stream::current(0), s1);
  }
  EXPECT_EQ(cuda::Stream::current(0), legacy);
  cuda::Stream moved = std::move(s1);
  EXPECT_FALSE(s1.defined());
  EXPECT_TRUE(moved.owns());
  EXPECT_KIRZL_ERROR(s1.synchronize(), ErrorCode::InvalidArgument, "empty");
}

TEST(CudaRuntime, PinnedAsyncRoundTripKeepsEveryValue) {
  KIRZL_REQUIRE_GPU();
  Generator g(5);
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{1000003}}) {
      Tensor host = randint(-1000, 1000, {n}, {.dtype = dt}, &g);
      Tensor pinned = host.pin_memory();
      ASSERT_TRUE(pinned.is_pinned());
      EXPECT_FALSE(host.is_pinned());
      EXPECT_TRUE(pinned.pin_memory().is_same(pinned)) << "already pinned: no copy";
      Tensor dev = pinned.to(Device::cuda(0), /*non_blocking=*/true);
      Tensor back = dev.to(Device::cpu(), /*non_blocking=*/true);
      EXPECT_TRUE(back.is_pinned());
      cuda::Stream::current(0).synchronize();
      EXPECT_TRUE(all_close(back, host, {0, 0})) << dtype_name(dt) << " n=" << n;
      // And the blocking way, from pageable memory.
      EXPECT_TRUE(all_close(host.to(Device::cuda(0)).to(Device::cpu()), host, {0, 0}));
    }
  }
  EXPECT_GT(cuda::host_memory_stats().allocations, 0u);
}

TEST(CudaRuntime, PinnedBufferIsNotReusedBeforeItsAsyncCopyCompletes) {
  KIRZL_REQUIRE_GPU();
  SKIP_WITHOUT_CACHING();
  BusyBuffers busy;
  Tensor dev = full({16 * 1024 * 1024}, 7.0, {.device = Device::cuda(0)});  // 64 MiB
  cuda::synchronize(0);
  keep_stream_busy(busy.a, busy.b);
  Tensor out = dev.to(Device::cpu(), /*non_blocking=*/true);  // queued behind the busy work
  void* p = out.data_ptr();
  out = Tensor();  // dropped before the copy ran
  ASSERT_FALSE(cuda::Stream::current(0).query()) << "the busy work finished too early for this test to mean anything";
  Tensor other = empty({16 * 1024 * 1024}).pin_memory();
  EXPECT_NE(other.data_ptr(), p) << "pinned block handed out while a copy still writes it";
  cuda::Stream::current(0).synchronize();
  other = Tensor();
  Tensor again = empty({16 * 1024 * 1024}).pin_memory();  // collects the completed event
  EXPECT_EQ(cuda::host_memory_stats().pending_frees, 0u);
}

TEST(CudaRuntime, NonContiguousDeviceTensorCopiesToTheHost) {
  KIRZL_REQUIRE_GPU();
  Generator g(6);
  Tensor host = randn({37, 53}, {}, &g);
  Tensor dev = host.to(Device::cuda(0));
  EXPECT_TRUE(all_close(dev.t().to(Device::cpu()), host.t().contiguous(), {0, 0}));
  EXPECT_TRUE(all_close(dev.slice(1, 3, 50, 4).to(Device::cpu()), host.slice(1, 3, 50, 4).contiguous(), {0, 0}));
  Tensor back = dev.t().to(Device::cpu(), /*non_blocking=*/true);
  cuda::Stream::current(0).synchronize();
  EXPECT_TRUE(all_close(back, host.t().contiguous(), {0, 0}));
}

TEST(CudaRuntime, CopiesBetweenDevices) {
  KIRZL_REQUIRE_GPU();
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two GPUs (cudaMemcpyPeerAsync path)";
  Generator g(7);
  Tensor host = randn({1000003}, {}, &g);
  Tensor d0 = host.to(Device::cuda(0));
  Tensor d1 = d0.to(Device::cuda(1));
  EXPECT_EQ(d1.device(), Device::cuda(1));
  EXPECT_TRUE(all_close(d1, host, {0, 0}));
  Tensor d1b = d0.to(Device::cuda(1), /*non_blocking=*/true);
  cuda::Stream::current(1).synchronize();
  EXPECT_TRUE(all_close(d1b, host, {0, 0}));
}

TEST(CudaRuntime, DevicePropertiesAreSane) {
  KIRZL_REQUIRE_GPU();
  cuda::DeviceProperties p = cuda::device_properties(0);
  EXPECT_FALSE(p.name.empty());
  EXPECT_GE(p.major, 5);
  EXPECT_GT(p.sm_count, 0);
  EXPECT_GT(p.total_memory, 1024 * MiB);
  EXPECT_GE(p.shared_memory_per_block_optin, p.shared_memory_per_block);
  EXPECT_GT(p.l2_cache_bytes, 0u);
  EXPECT_EQ(p.warp_size, 32);
  EXPECT_GE(p.max_threads_per_block, 1024);
  cuda::MemInfo m = cuda::mem_get_info(0);
  EXPECT_LE(m.total_bytes, p.total_memory);
  EXPECT_GT(m.free_bytes, 0u);
  EXPECT_LE(m.free_bytes, m.total_bytes);
  if (p.memory_bus_width_bits > 0 && p.memory_clock_khz > 0) {
    EXPECT_GT(p.peak_memory_bandwidth_gbs(), 100.0);
  }
  EXPECT_EQ(cuda::current_device(), 0);
  cuda::set_device(0);
  EXPECT_KIRZL_ERROR(cuda::set_device(cuda::device_count()), ErrorCode::InvalidArgument, "visible");
  EXPECT_KIRZL_ERROR(cuda::device_properties(-1), ErrorCode::InvalidArgument, "cuda:-1");
}

TEST(CudaRuntime, ThreadsAllocateConcurrently) {
  KIRZL_REQUIRE_GPU();
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &bad] {
      cuda::Stream s(0);
      cuda::StreamGuard guard(s);
      for (int i = 0; i < 200; ++i) {
        Tensor a = full({1000 + 17 * i}, static_cast<double>(t), {.device = Device::cuda(0)});
        Tensor b = full({(1 << 20) + i}, static_cast<double>(i), {.device = Device::cuda(0)});
        std::vector<float> va = a.to(Device::cpu()).to_vector<float>();
        if (va.front() != static_cast<float>(t) || va.back() != static_cast<float>(t)) ++bad[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}
