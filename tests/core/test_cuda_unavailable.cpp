// Without a usable GPU (a build without CUDA, or a CUDA build on a machine without a GPU), every
// CUDA entry point throws Error{Unsupported} naming the call and the reason. Runs on the CPU; on a
// machine with a GPU these tests skip (tests/core/test_cuda_runtime_cuda.cpp covers that case).
#include <gtest/gtest.h>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;

namespace {

// What the message says, by build.
const char* reason() { return KIRZL_HAS_CUDA ? "no CUDA device is available" : "kirzl was built without CUDA"; }

#define SKIP_IF_GPU()                                                                        \
  do {                                                                                       \
    if (cuda::is_available()) GTEST_SKIP() << "a GPU is present: the unavailable paths do not apply"; \
  } while (0)

}  // namespace

TEST(CudaUnavailable, DeviceCountIsZeroAndNeverThrows) {
  SKIP_IF_GPU();
  EXPECT_EQ(cuda::device_count(), 0);
  EXPECT_FALSE(cuda::is_available());
}

TEST(CudaUnavailable, DeviceFunctionsNameTheCallAndTheReason) {
  SKIP_IF_GPU();
  EXPECT_KIRZL_ERROR(cuda::set_device(0), ErrorCode::Unsupported, "cuda::set_device", reason());
  EXPECT_KIRZL_ERROR(cuda::current_device(), ErrorCode::Unsupported, "cuda::current_device", reason());
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::Unsupported, "cuda::synchronize", reason());
  EXPECT_KIRZL_ERROR(cuda::device_properties(0), ErrorCode::Unsupported, "cuda::device_properties", reason());
  EXPECT_KIRZL_ERROR(cuda::memory_stats(0), ErrorCode::Unsupported, "cuda::memory_stats", reason());
  EXPECT_KIRZL_ERROR(cuda::reset_peak_memory_stats(0), ErrorCode::Unsupported, "cuda::reset_peak_memory_stats", reason());
  EXPECT_KIRZL_ERROR(cuda::empty_cache(), ErrorCode::Unsupported, "cuda::empty_cache", reason());
  EXPECT_KIRZL_ERROR(cuda::host_memory_stats(), ErrorCode::Unsupported, "cuda::host_memory_stats", reason());
  EXPECT_KIRZL_ERROR(cuda::empty_host_cache(), ErrorCode::Unsupported, "cuda::empty_host_cache", reason());
  EXPECT_KIRZL_ERROR(cuda::mem_get_info(0), ErrorCode::Unsupported, "cuda::mem_get_info", reason());
}

TEST(CudaUnavailable, StreamsCannotBeCreated) {
  SKIP_IF_GPU();
  EXPECT_KIRZL_ERROR(cuda::Stream(0), ErrorCode::Unsupported, "cuda::Stream", reason());
  EXPECT_KIRZL_ERROR(cuda::Stream(0, -1), ErrorCode::Unsupported, "cuda::Stream", reason());
  EXPECT_KIRZL_ERROR(cuda::Stream::current(0), ErrorCode::Unsupported, "cuda::Stream::current", reason());
  EXPECT_KIRZL_ERROR(cuda::Stream::legacy_default(0), ErrorCode::Unsupported, "cuda::Stream::legacy_default", reason());
  EXPECT_KIRZL_ERROR(cuda::Stream::per_thread_default(0), ErrorCode::Unsupported, "cuda::Stream::per_thread_default",
                     reason());
  EXPECT_KIRZL_ERROR(cuda::Stream::from_native(0, nullptr), ErrorCode::Unsupported, "cuda::Stream::from_native", reason());
  EXPECT_KIRZL_ERROR(cuda::Event::elapsed_ms(cuda::Event(true), cuda::Event(true)), ErrorCode::Unsupported,
                     "cuda::Event::elapsed_ms", reason());
}

TEST(CudaUnavailable, EmptyStreamsAndUnrecordedEventsNeedNoDevice) {
  // An empty Stream is an argument error everywhere; an Event never recorded has completed.
  cuda::Stream empty;
  EXPECT_FALSE(empty.defined());
  EXPECT_EQ(empty.native_handle(), nullptr);
  EXPECT_FALSE(empty.is_legacy_default());
  EXPECT_FALSE(empty.is_per_thread_default());
  cuda::Event e;
  EXPECT_FALSE(e.recorded());
  EXPECT_TRUE(e.query());
  e.synchronize();
  cuda::Event moved = std::move(e);
  EXPECT_TRUE(moved.query());
  SKIP_IF_GPU();
  EXPECT_THROW(empty.synchronize(), Error);
  EXPECT_THROW(empty.wait(empty), Error);
  EXPECT_THROW(moved.record(empty), Error);
  EXPECT_THROW(Storage().record_stream(empty), Error);
}

TEST(CudaUnavailable, PinnedMemoryIsUnsupported) {
  SKIP_IF_GPU();
  Tensor t = arange(10);
  EXPECT_FALSE(t.is_pinned());
  EXPECT_FALSE(Tensor().is_pinned());
  EXPECT_KIRZL_ERROR(t.pin_memory(), ErrorCode::Unsupported, "pin_memory", reason());
  EXPECT_KIRZL_ERROR(Storage::allocate_pinned(64), ErrorCode::Unsupported, "pin_memory", reason());
}

TEST(CudaUnavailable, CudaTensorsAndCopiesAreUnsupported) {
  SKIP_IF_GPU();
  Tensor t = arange(10);
  EXPECT_KIRZL_ERROR(t.to(Device::cuda(0)), ErrorCode::Unsupported, reason());
  EXPECT_KIRZL_ERROR(t.to(Device::cuda(0), /*non_blocking=*/true), ErrorCode::Unsupported, reason());
  EXPECT_KIRZL_ERROR(zeros({3}, {.device = Device::cuda(0)}), ErrorCode::Unsupported, reason());
  EXPECT_KIRZL_ERROR(empty({0}, {.device = Device::cuda(0)}), ErrorCode::Unsupported, reason());
  // Staying on the CPU needs no device, non_blocking or not.
  EXPECT_TRUE(t.to(Device::cpu(), true).is_same(t));
}

TEST(CudaUnavailable, ABuildWithoutCudaSaysHowToGetTheBackend) {
  if (KIRZL_HAS_CUDA) GTEST_SKIP() << "kirzl was built with CUDA";
  // pip builds without CUDA by default (pyproject.toml): the message names the pip way too.
  EXPECT_KIRZL_ERROR(zeros({3}, {.device = Device::cuda(0)}), ErrorCode::Unsupported, "kirzl was built without CUDA",
                     "KIRZL_WITH_CUDA=ON", "pip install . -C cmake.define.KIRZL_WITH_CUDA=ON");
  EXPECT_KIRZL_ERROR(cuda::Stream(0), ErrorCode::Unsupported, "pip install . -C cmake.define.KIRZL_WITH_CUDA=ON");
}

TEST(CudaUnavailable, GraphsCannotBeMadeAndNothingIsCapturing) {
  SKIP_IF_GPU();
  EXPECT_KIRZL_ERROR(cuda::Graph(), ErrorCode::Unsupported, "cuda::Graph", reason());
  EXPECT_KIRZL_ERROR(cuda::Graph({.device = 0}), ErrorCode::Unsupported, "cuda::Graph", reason());
  EXPECT_FALSE(cuda::is_capturing(0));
  EXPECT_FALSE(cuda::is_capturing(-1));
}
