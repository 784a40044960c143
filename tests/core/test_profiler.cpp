// The kernel profiler on the CPU: what it records, what it leaves out, how it adds up.
#include <gtest/gtest.h>

#include <chrono>
#include <kirzl/core/profiler.hpp>
#include <kirzl/kirzl.hpp>
#include <memory>
#include <string>
#include <thread>

#include "kernels/dispatch_table.h"

// Test kernels on the dispatch table, with CPU implementations whose time is known.
namespace kirzl::kernels {
KIRZL_DECLARE_KERNEL(profiler_test_sleep, void (*)(const Tensor& t, int ms));
KIRZL_DECLARE_KERNEL(profiler_test_outer, void (*)(const Tensor& t, int ms));
KIRZL_DECLARE_KERNEL(profiler_test_throw, void (*)(const Tensor& t));
}  // namespace kirzl::kernels

using namespace kirzl;
using profiler::Profile;
using profiler::ProfileRow;

namespace {

void sleep_kernel(const Tensor&, int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
// Calls the sleep kernel through the table twice, then sleeps itself.
void outer_kernel(const Tensor& t, int ms) {
  kernels::profiler_test_sleep(t, ms);
  kernels::profiler_test_sleep(t, ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}
void throw_kernel(const Tensor&) { KIRZL_FAIL(ErrorCode::InvalidArgument, "profiler_test_throw: refused"); }

void register_test_kernels() {
  static const bool once = [] {
    KIRZL_REGISTER_KERNEL(profiler_test_sleep, DeviceType::CPU, &sleep_kernel);
    KIRZL_REGISTER_KERNEL(profiler_test_outer, DeviceType::CPU, &outer_kernel);
    KIRZL_REGISTER_KERNEL(profiler_test_throw, DeviceType::CPU, &throw_kernel);
    return true;
  }();
  (void)once;
}

const ProfileRow* find(const std::vector<ProfileRow>& rows, const std::string& name) {
  for (const ProfileRow& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

class ProfilerTest : public ::testing::Test {
 protected:
  void SetUp() override { register_test_kernels(); }
  Tensor t = zeros({4});
};

TEST_F(ProfilerTest, CountsEachCallOfAKernelWithItsTime) {
  Profile prof;
  for (int i = 0; i < 3; ++i) kernels::profiler_test_sleep(t, 10);
  prof.stop();
  const auto rows = prof.by_kernel();
  const ProfileRow* r = find(rows, "profiler_test_sleep");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->calls, 3);
  EXPECT_EQ(r->device, DeviceType::CPU);
  EXPECT_GE(r->host_ms, 30.0);
  EXPECT_LT(r->host_ms, 30.0 + 500.0);  // generous: a loaded CI machine
  EXPECT_DOUBLE_EQ(r->device_ms, r->host_ms) << "a CPU kernel runs inside the call";
  EXPECT_EQ(r->untimed_calls, 0);
  EXPECT_DOUBLE_EQ(prof.total_device_ms(), r->device_ms);
}

TEST_F(ProfilerTest, NestedKernelsCountOnceUnderTheOutermost) {
  Profile prof;
  kernels::profiler_test_outer(t, 10);
  prof.stop();
  const auto rows = prof.by_kernel();
  EXPECT_EQ(find(rows, "profiler_test_sleep"), nullptr) << "the inner calls were counted besides the outer one";
  const ProfileRow* outer = find(rows, "profiler_test_outer");
  ASSERT_NE(outer, nullptr);
  EXPECT_EQ(outer->calls, 1);
  EXPECT_GE(outer->host_ms, 30.0) << "the outer call's time includes its inner calls";
  // And a later top-level call of the inner kernel counts again.
  Profile again;
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(find(again.by_kernel(), "profiler_test_sleep")->calls, 1);
}

TEST_F(ProfilerTest, AThrowingKernelIsCountedAndItsErrorReachesTheCaller) {
  Profile prof;
  EXPECT_THROW(kernels::profiler_test_throw(t), Error);
  kernels::profiler_test_sleep(t, 1);
  const auto rows = prof.by_kernel();
  EXPECT_EQ(find(rows, "profiler_test_throw")->calls, 1);
  EXPECT_EQ(find(rows, "profiler_test_sleep")->calls, 1) << "the profile went on after the error";
}

TEST_F(ProfilerTest, RecordsOnlyItsOwnThread) {
  Profile prof;
  std::thread other([&] { kernels::profiler_test_sleep(t, 1); });
  other.join();
  EXPECT_TRUE(prof.by_kernel().empty()) << "another thread's call was recorded";
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(prof.by_kernel().size(), 1u);
}

TEST_F(ProfilerTest, StopEndsTheRecordingAndKeepsTheCalls) {
  Profile prof;
  EXPECT_TRUE(prof.recording());
  kernels::profiler_test_sleep(t, 1);
  prof.stop();
  prof.stop();  // idempotent
  EXPECT_FALSE(prof.recording());
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(find(prof.by_kernel(), "profiler_test_sleep")->calls, 1);
}

TEST_F(ProfilerTest, OneProfileAtATimePerThread) {
  Profile first;
  try {
    Profile second;
    FAIL() << "a second Profile on the same thread was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("one at a time"), std::string::npos) << e.what();
  }
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(first.by_kernel().size(), 1u) << "the refused Profile disturbed the first";
  first.stop();
  Profile third;  // after stop() a new one may start
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(third.by_kernel().size(), 1u);
  EXPECT_EQ(find(first.by_kernel(), "profiler_test_sleep")->calls, 1);
}

TEST_F(ProfilerTest, AProfileDestroyedOnAnotherThreadStopsTheRecording) {
  auto prof = std::make_unique<Profile>();
  kernels::profiler_test_sleep(t, 1);
  std::thread([&] { prof.reset(); }).join();  // destroyed there
  kernels::profiler_test_sleep(t, 1);         // must neither crash nor record
  Profile next;                               // and this thread may profile again
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(find(next.by_kernel(), "profiler_test_sleep")->calls, 1);
}

TEST_F(ProfilerTest, ResetForgetsTheCallsAndKeepsRecording) {
  Profile prof;
  kernels::profiler_test_sleep(t, 1);
  prof.reset();
  EXPECT_TRUE(prof.by_kernel().empty());
  EXPECT_TRUE(prof.recording());
  kernels::profiler_test_sleep(t, 1);
  EXPECT_EQ(find(prof.by_kernel(), "profiler_test_sleep")->calls, 1);
}

TEST(ProfilerFamilies, EveryKernelOfKirzlHasAFamily) {
  const auto names = kernels::registered_kernel_names();
  ASSERT_GT(names.size(), 30u);
  for (const char* name : names) {
    const std::string n = name;
    if (n.rfind("profiler_test_", 0) == 0) continue;  // this file's kernels
    EXPECT_NE(profiler::kernel_family(n), "other") << n << " has no family in kernel_family()";
  }
}

TEST(ProfilerFamilies, NamesGoToTheirFamilies) {
  EXPECT_EQ(profiler::kernel_family("gemm_bias_gelu"), "gemm") << "a GEMM epilogue is GEMM time";
  EXPECT_EQ(profiler::kernel_family("gemm_dgelu_bgrad"), "gemm");
  EXPECT_EQ(profiler::kernel_family("bias_gelu_forward"), "gelu");
  EXPECT_EQ(profiler::kernel_family("residual_layer_norm_backward"), "layer_norm");
  EXPECT_EQ(profiler::kernel_family("cudnn_attention_forward"), "attention");
  EXPECT_EQ(profiler::kernel_family("flash_attention_backward"), "attention");
  EXPECT_EQ(profiler::kernel_family("classifier_backward_inplace"), "classifier");
  EXPECT_EQ(profiler::kernel_family("cross_entropy_forward"), "classifier");
  EXPECT_EQ(profiler::kernel_family("multi_tensor_adam"), "optimizer");
  EXPECT_EQ(profiler::kernel_family("binary"), "elementwise");
  EXPECT_EQ(profiler::kernel_family("no_such_kernel"), "other");
}

// A real model step on the CPU: the matrix products dominate, and the families add up to the
// kernels.
TEST(ProfilerOnOps, AnMlpStepIsMostlyGemmAndTheFamiliesAddUp) {
  Tensor x = uniform({256, 512}, -1, 1), w1 = uniform({512, 512}, -0.1, 0.1).requires_grad_(),
         w2 = uniform({512, 10}, -0.1, 0.1).requires_grad_();
  Profile prof;
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss = sum(relu(matmul(relu(matmul(x, w1)), w2)));
  loss.backward();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  prof.stop();
  const auto families = prof.by_family();
  ASSERT_FALSE(families.empty());
  EXPECT_EQ(families.front().name, "gemm") << prof.table();
  EXPECT_GE(families.front().calls, 2 + 3) << "two forward products, at least three in the backward";
  double fam = 0, ker = 0;
  for (const auto& f : families) fam += f.device_ms;
  for (const auto& k : prof.by_kernel()) ker += k.device_ms;
  EXPECT_NEAR(fam, ker, 1e-9);
  EXPECT_NEAR(prof.total_device_ms(), ker, 1e-9);
  EXPECT_LE(ker, wall_ms) << "kernels counted twice";
  EXPECT_NE(find(prof.by_kernel(), "unary"), nullptr) << "relu's kernel";
  const std::string table = prof.table();
  EXPECT_NE(table.find("gemm"), std::string::npos) << table;
  EXPECT_NE(table.find("total device time"), std::string::npos) << table;
}

}  // namespace
