// The NCCL watchdog on a real device (label gpu): a collective held back on the device past its
// timeout fails with Error{Timeout} and the report, the communicator is aborted and poisoned, and
// the host never hangs. Its own program: the aborted communicator is not reused by other tests.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

#if KIRZL_HAS_NCCL
#include <cuda_runtime.h>

#include "comm/nccl_communicator.h"
#include "core/cuda/current_stream.h"
#endif

using namespace kirzl;

#if KIRZL_HAS_NCCL
namespace {
void CUDART_CB sleep_on_stream(void* ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(reinterpret_cast<intptr_t>(ms)));
}
}  // namespace
#endif

TEST(NcclWatchdog, ACollectiveStuckOnTheDeviceTimesOutAbortsAndPoisons) {
  KIRZL_REQUIRE_GPU();
#if KIRZL_HAS_NCCL
  auto c = comm::detail::nccl_create(0, 1, 0, {}, std::chrono::milliseconds(200), nullptr);
  Tensor t = ones({1024}, {.device = Device::cuda(0)});
  c->all_reduce(t).synchronize();  // healthy first
  // Hold the caller's stream for 1.5 s: the collective waits for it on the device.
  ASSERT_EQ(cudaLaunchHostFunc(cuda_rt::current_stream(0), sleep_on_stream, reinterpret_cast<void*>(intptr_t{1500})),
            cudaSuccess);
  const auto t0 = std::chrono::steady_clock::now();
  comm::Work w = c->all_reduce(t, {.tag = "held back"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100)) << "issuing never blocks the host";
  EXPECT_KIRZL_ERROR(w.synchronize(), ErrorCode::Timeout, "all_reduce #2", "held back", "timed out after 200 ms",
                     "nccl, 1 ranks");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1400)) << "failed by the watchdog, not late";
  EXPECT_KIRZL_ERROR(c->all_reduce(t), ErrorCode::Timeout, "unusable after an earlier failure");
  EXPECT_KIRZL_ERROR(w.wait(), ErrorCode::Timeout, "all_reduce #2");
  ASSERT_EQ(cudaStreamSynchronize(cuda_rt::current_stream(0)), cudaSuccess);
  c.reset();  // destroying an aborted communicator does not hang
#else
  GTEST_SKIP() << "kirzl was built without NCCL";
#endif
}
