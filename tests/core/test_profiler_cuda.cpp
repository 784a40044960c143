// The kernel profiler on a GPU (Note [profiler]): device times from CUDA events agree with the
// same work timed by hand, a training step breaks down into its families, captured calls count
// as untimed. Skipped without a GPU.
#include <gtest/gtest.h>

#include <chrono>
#include <kirzl/core/profiler.hpp>
#include <kirzl/kirzl.hpp>
#include <string>

#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::test_gpu;
using profiler::Profile;
using profiler::ProfileRow;

namespace {

const ProfileRow* find(const std::vector<ProfileRow>& rows, const std::string& name) {
  for (const ProfileRow& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace

// 64 Mi f32 elements: each add reads 512 MiB and writes 256 MiB, a fraction of a millisecond on
// any GPU kirzl targets, long enough that the events' own resolution (about 0.5 us) is noise.
TEST(ProfilerCuda, DeviceTimeOfAKernelAgreesWithEventsAroundIt) {
  KIRZL_REQUIRE_REAL_GPU("device timing");
  const int64_t n = int64_t{64} << 20;
  Tensor a = full({n}, 1.0, {.device = test_gpu()}), b = full({n}, 2.0, {.device = test_gpu()});
  Tensor out = add(a, b);  // warm-up: allocations, first launch; twice, so that the loop
  out = add(a, b);         // timed by hand below allocates no second output block inside it
  cuda::synchronize(0);
  cuda::Stream s = cuda::Stream::current(0);
  cuda::Event start(true), stop(true);
  start.record(s);
  for (int i = 0; i < 5; ++i) out = add(a, b);
  stop.record(s);
  stop.synchronize();
  const double by_hand = cuda::Event::elapsed_ms(start, stop);

  Profile prof;
  for (int i = 0; i < 5; ++i) out = add(a, b);
  prof.stop();
  const ProfileRow* r = find(prof.by_kernel(), "binary");
  ASSERT_NE(r, nullptr) << prof.table();
  EXPECT_EQ(r->device, DeviceType::CUDA);
  EXPECT_EQ(r->calls, 5);
  EXPECT_EQ(r->untimed_calls, 0);
  EXPECT_NEAR(r->device_ms, by_hand, 0.25 * by_hand + 0.05) << "profiled " << r->device_ms << " ms, by hand " << by_hand;
  EXPECT_LT(r->host_ms, r->device_ms) << "the host only launches a CUDA kernel";
}

TEST(ProfilerCuda, WithoutDeviceTimeCallsAreUntimed) {
  KIRZL_REQUIRE_REAL_GPU("device timing");
  Tensor a = full({1024}, 1.0, {.device = test_gpu()});
  Profile prof({.device_time = false});
  for (int i = 0; i < 3; ++i) a = add(a, a);
  const ProfileRow* r = find(prof.by_kernel(), "binary");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->calls, 3);
  EXPECT_EQ(r->untimed_calls, 3);
  EXPECT_EQ(r->device_ms, 0.0);
  EXPECT_GT(r->host_ms, 0.0);
}

// A small bf16 GPT training step: the families of the fused path show up, each timed on the
// device, and their sum stays within the steps' wall time. (How much of the wall time they fill
// depends on the launch overhead of so small a model: bench_gpt2's BM_gpt2_step_breakdown
// reports that share for GPT-2 124M.)
TEST(ProfilerCuda, AGptTrainingStepBreaksDownIntoItsFamilies) {
  KIRZL_REQUIRE_REAL_GPU("device timing");
  models::GPTConfig c{.vocab_size = 256, .block_size = 128, .n_layer = 2, .n_head = 4, .n_embd = 256};
  manual_seed(3);
  models::GPT m(c);
  m.to(test_gpu());
  m.to(DType::bf16);
  optim::AdamW opt(m.parameters(), {.lr = 1e-4});
  Generator gen(4);
  Tensor idx = randint(0, 256, {8, 128}, {.dtype = DType::i64}, &gen).to(test_gpu());
  Tensor tgt = randint(0, 256, {8, 128}, {.dtype = DType::i64}, &gen).to(test_gpu());
  auto step = [&] {
    m.zero_grad(true);
    Tensor loss = m.fused_loss(idx, tgt);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 2; ++i) step();  // warm-up
  cuda::synchronize(0);
  Profile prof;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize(0);
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  prof.stop();
  const auto families = prof.by_family();
  // No "gelu": on CUDA the MLP's GELU may run inside the GEMMs' epilogues (Note [GEMM epilogues]).
  for (const char* f : {"gemm", "attention", "layer_norm", "classifier", "optimizer", "embedding"}) {
    const ProfileRow* r = find(families, f);
    ASSERT_NE(r, nullptr) << "no " << f << " in the step:\n" << prof.table();
    EXPECT_GT(r->device_ms, 0.0) << f << " was not timed on the device:\n" << prof.table();
    EXPECT_EQ(r->untimed_calls, 0) << f;
  }
  EXPECT_EQ(find(families, "other"), nullptr) << prof.table();
  const double device_ms = prof.total_device_ms();
  EXPECT_LE(device_ms, wall_ms * 1.02) << "more kernel time than the steps took:\n" << prof.table();
  std::printf("%s", prof.table().c_str());
}

// Calls captured into a CUDA graph do not run then: they count as untimed, and the events are
// not recorded into the graph (the capture succeeds and the replay is right).
TEST(ProfilerCuda, CallsDuringACaptureAreUntimedAndTheCaptureWorks) {
  KIRZL_REQUIRE_REAL_GPU("device timing");
  Tensor x = full({4096}, 1.0, {.device = test_gpu()});
  Tensor y = add(x, 1.0);  // warm-up
  cuda::synchronize(0);
  Profile prof;
  cuda::Graph g;
  g.capture([&] { y = add(x, 1.0); });
  x.fill_(5.0);
  g.replay();
  EXPECT_EQ(y.to(Device::cpu()).to_vector<float>()[0], 6.0f);
  const ProfileRow* r = find(prof.by_kernel(), "binary");
  ASSERT_NE(r, nullptr) << prof.table();
  EXPECT_GE(r->untimed_calls, 1) << "the captured add was timed";
}

// Reading the profile waits for its events, but a bad index found meanwhile (Note [deferred index
// check]) stays for the user's own synchronisation: the profile neither reports nor swallows it,
// and keeps timing afterwards.
TEST(ProfilerCuda, ReadingTheProfileLeavesABadIndexForTheUsersSynchronisation) {
  KIRZL_REQUIRE_REAL_GPU("device timing");
  if (cuda::sync_index_checks()) GTEST_SKIP() << "index checks are eager (KIRZL_SYNC_INDEX_CHECKS=1)";
  Tensor w = full({10, 4}, 1.0, {.device = test_gpu()});
  Tensor good = from_vector<int64_t>({1, 2, 3}).to(test_gpu()), bad = from_vector<int64_t>({1, 2, 10}).to(test_gpu());
  Tensor out = embedding(w, good);  // warm-up (the device's index flag, first launch)
  cuda::synchronize(0);
  Profile prof;
  out = embedding(w, bad);
  EXPECT_NO_THROW(prof.table()) << "the profile reported the user's bad index";
  EXPECT_NO_THROW(prof.reset());
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "index 10 at flat position 2");
  Tensor x = full({4096}, 1.0, {.device = test_gpu()});
  for (int i = 0; i < 3; ++i) x = add(x, x);
  const ProfileRow* r = find(prof.by_kernel(), "binary");
  ASSERT_NE(r, nullptr) << prof.table();
  EXPECT_EQ(r->calls, 3);
  EXPECT_EQ(r->untimed_calls, 0) << "the profile stopped timing";
  EXPECT_GT(r->device_ms, 0.0);
}
