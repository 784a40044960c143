// cuda::Graph on a GPU (Note [cuda graph capture], Note [cuda graph memory]): captured work replayed
// with new static inputs equals the same work run eagerly (a few ops, an MLP training step, a
// small bf16 GPT training step, both with capturable AdamW), operations that cannot be captured fail loudly and leave the
// stream usable, and a destroyed graph's memory goes back to the cache. Skipped without a GPU.
//
// Comparisons of replays with eager runs are bitwise: a replay launches the kernels the eager run launched, with the same
// arguments and the same launch configurations, on inputs with the same values, and kirzl's
// kernels reduce in a fixed order (no atomics in the ops used here), so any difference is a bug
// of the capture (a stale address, a baked-in value), not rounding.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <thread>
#include <kirzl/kirzl.hpp>
#include <vector>

#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::bitwise_equal;
using kirzl::testing::test_gpu;

namespace {

Tensor batch(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, {}, &gen).to(test_gpu());
}

Tensor labels(const Shape& shape, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  return randint(0, classes, shape, {.dtype = DType::i64}, &gen).to(test_gpu());
}

void expect_same_parameters(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bitwise_equal(a[i], b[i])) << "parameter " << i;
}

}  // namespace

TEST(CudaGraph, ReplayedOpsEqualEagerOpsOnNewInputs) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({64, 33}, 1);  // the static input
  auto step = [](const Tensor& in) { return sum(gelu(add(mul(in, 2.0), 1.0)), {1}); };
  (void)step(x);  // warm-up
  Tensor y;
  cuda::Graph g;
  EXPECT_FALSE(g.captured());
  g.capture([&] { y = step(x); });
  EXPECT_TRUE(g.captured());
  for (uint64_t i = 0; i < 5; ++i) {
    Tensor next = batch({64, 33}, 10 + i);
    x.copy_(next);
    g.replay();
    EXPECT_TRUE(bitwise_equal(y, step(next))) << "replay " << i;
  }
}

// A training step of two identical setups: `step(graphed, a, b)` runs one step of the graphed
// setup (graphed = true) or of the eager one on the batch (a, b) and returns the loss.
using TrainStep = std::function<Tensor(bool graphed, const Tensor& a, const Tensor& b)>;
struct Batch {
  Tensor a, b;
};

// Runs `warmup` steps eagerly on both setups (the graphed one through its static inputs: warm-up
// fills optimizer state, cuDNN plans, cuBLASLt heuristics and the allocator's cache), captures
// one step of the graphed setup, then for each later batch runs the eager setup and replays the
// graph on the same batch copied into the static inputs: the losses must be bitwise equal.
// `before(i)` runs before step i (e.g. to change lr on both).
void expect_replays_equal_eager(const TrainStep& step, const std::function<Batch(uint64_t)>& batch_at, uint64_t warmup,
                                uint64_t steps, const std::function<void(uint64_t)>& before = {}) {
  const Batch first = batch_at(0);
  Tensor a = first.a.clone(), b = first.b.clone();  // the graph's static inputs
  for (uint64_t i = 0; i < warmup; ++i) {
    const Batch bi = batch_at(i);
    step(false, bi.a, bi.b);
    a.copy_(bi.a);
    b.copy_(bi.b);
    step(true, a, b);
  }
  Tensor loss;
  cuda::Graph g;
  g.capture([&] { loss = step(true, a, b); });
  for (uint64_t i = warmup; i < steps; ++i) {
    if (before) before(i);
    const Batch bi = batch_at(i);
    Tensor expected = step(false, bi.a, bi.b);
    a.copy_(bi.a);
    b.copy_(bi.b);
    g.replay();
    EXPECT_TRUE(bitwise_equal(loss, expected)) << "step " << i;
  }
}

TEST(CudaGraph, MlpTrainingStepReplayEqualsEagerSteps) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  auto make = [] {
    manual_seed(7);
    auto m = std::make_shared<nn::Sequential>(nn::Linear(32, 64), nn::GELU(), nn::Linear(64, 10));
    m->to(test_gpu());
    return m;
  };
  auto eager = make(), graphed = make();
  const optim::AdamWOptions options{.lr = 1e-2, .weight_decay = 0.1, .capturable = true};
  optim::AdamW eager_opt(eager->parameters(), options), graphed_opt(graphed->parameters(), options);
  auto step = [&](bool g, const Tensor& x, const Tensor& y) {
    nn::Sequential& m = g ? *graphed : *eager;
    m.zero_grad(true);
    Tensor loss = cross_entropy(m.forward(x), y);
    loss.backward();
    (g ? graphed_opt : eager_opt).step();
    return loss;
  };
  auto batch_at = [](uint64_t i) { return Batch{batch({16, 32}, 100 + i), labels({16}, 10, 200 + i)}; };
  expect_replays_equal_eager(step, batch_at, 2, 8, [&](uint64_t i) {
    if (i != 5) return;
    eager_opt.set_lr(3e-3);  // reaches the device lr between replays (Note [capturable adam])
    graphed_opt.set_lr(3e-3);
  });
  expect_same_parameters(graphed->parameters(), eager->parameters());
  // The replays advanced the device's step counts only: a checkpoint must still see 8 steps.
  for (int64_t i = 0; i < graphed_opt.num_params(); ++i) {
    EXPECT_EQ(graphed_opt.step_count(i), 8) << "parameter " << i;
    EXPECT_EQ(graphed_opt.state_dict().at("state." + std::to_string(i) + ".step").item(), 8.0) << "parameter " << i;
  }
}

TEST(CudaGraph, SmallBf16GptTrainingStepReplayEqualsEagerSteps) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  models::GPTConfig c{.vocab_size = 64, .block_size = 32, .n_layer = 2, .n_head = 2, .n_embd = 64};
  auto make = [&] {
    manual_seed(11);
    auto m = std::make_shared<models::GPT>(c);
    m->to(test_gpu());
    m->to(DType::bf16);
    return m;
  };
  auto eager = make(), graphed = make();
  const optim::AdamWOptions options{.lr = 6e-4, .betas = {0.9, 0.95}, .weight_decay = 0.1, .capturable = true};
  optim::AdamW eager_opt(eager->parameters(), options), graphed_opt(graphed->parameters(), options);
  auto step = [&](bool g, const Tensor& idx, const Tensor& tgt) {
    models::GPT& m = g ? *graphed : *eager;
    m.zero_grad(true);
    Tensor loss = m.fused_loss(idx, tgt);
    loss.backward();
    (g ? graphed_opt : eager_opt).step();
    return loss;
  };
  auto batch_at = [](uint64_t i) { return Batch{labels({2, 32}, 64, 10 + i), labels({2, 32}, 64, 20 + i)}; };
  expect_replays_equal_eager(step, batch_at, 2, 6);
  expect_same_parameters(graphed->parameters(), eager->parameters());
}

// The device computes capturable Adam's bias corrections with CUDA's pow (at most 2 ulp in f64)
// where the host uses the C library's, so the f32 step size may differ in its last bit: after 8
// steps the parameters agree to 1e-5 relative (each step's update is below lr = 1e-2 in size).
TEST(CudaGraph, CapturableAdamWOnTheGpuEqualsHostScalars) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Generator gen(5);
  std::vector<Tensor> a = {randn({33, 17}, {}, &gen).to(test_gpu()).requires_grad_(),
                           randn({17}, {}, &gen).to(test_gpu()).requires_grad_()};
  std::vector<Tensor> b = {a[0].detach().clone().requires_grad_(), a[1].detach().clone().requires_grad_()};
  optim::AdamW plain(a, {.lr = 1e-2, .weight_decay = 0.1});
  optim::AdamW capt(b, {.lr = 1e-2, .weight_decay = 0.1, .capturable = true});
  for (uint64_t step = 0; step < 8; ++step) {
    for (size_t k = 0; k < a.size(); ++k) {
      Tensor g = batch(a[k].shape(), 50 + step * 2 + k);
      a[k].set_grad(g);
      b[k].set_grad(g.clone());
    }
    plain.step();
    capt.step();
  }
  for (size_t k = 0; k < a.size(); ++k)
    EXPECT_TRUE(kirzl::testing::all_close(b[k], a[k].to(Device::cpu()), {1e-5, 1e-6})) << "parameter " << k;
}

TEST(CudaGraph, HostSynchronisationInsideTheCaptureIsAnErrorAndTheStreamStillWorks) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({8}, 3);
  // The GPU's sum (f32 tree) is not the CPU's (f64, rounded once): for this x they differ in the
  // last bit, so the stream is checked against its own result before any capture.
  const double before = sum(x).item();
  const std::vector<std::pair<const char*, std::function<void()>>> unsafe = {
      {"Tensor::item()", [&] { (void)sum(x).item(); }},
      {"Tensor::to(cpu)", [&] { (void)x.to(Device::cpu()); }},
      {"cuda::Stream::synchronize", [&] { cuda::Stream::current(0).synchronize(); }},
      {"cuda::synchronize", [&] { cuda::synchronize(0); }},
  };
  for (const auto& [what, call] : unsafe) {
    cuda::Graph g;
    EXPECT_KIRZL_ERROR(g.capture([&] { call(); }), ErrorCode::Unsupported, "cannot run inside CUDA graph capture");
    EXPECT_FALSE(g.captured()) << what;
    EXPECT_FALSE(cuda::is_capturing(0)) << what;
    EXPECT_EQ(sum(x).item(), before) << what << ": the stream works after the failed capture";
    Tensor y;
    g.capture([&] { y = mul(x, 3.0); });  // the same Graph captures after a failure
    g.replay();
    EXPECT_TRUE(bitwise_equal(y, mul(x, 3.0))) << what;
  }
}

TEST(CudaGraph, AnotherThreadCannotSynchroniseTheDeviceDuringACapture) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  // cudaDeviceSynchronize while a stream of the device captures is invalid and would invalidate
  // the capture: kirzl refuses it on the other thread, and the capture goes on.
  Tensor x = batch({8}, 4);
  Tensor y;
  cuda::Graph g;
  g.capture([&] {
    y = mul(x, 5.0);
    std::thread other([] {
      EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::Unsupported, "another thread is capturing");
    });
    other.join();
  });
  g.replay();
  EXPECT_TRUE(bitwise_equal(y, mul(x, 5.0)));
  cuda::synchronize(0);  // fine again once the capture has ended
}

TEST(CudaGraph, AGraphDestroyedInsideAnotherCaptureKeepsItsMemory) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  // Its last replay cannot be waited for inside a capture: its memory must not go back to the
  // allocator (the next allocations would take it while that replay may still write it).
  Tensor x = batch({1 << 16}, 5);
  Tensor before = mul(x, 3.0);  // freed inside the first capture: held for that graph
  auto first = std::make_unique<cuda::Graph>();
  Tensor y;
  first->capture([&] {
    y = mul(before, 2.0);
    before = Tensor();
  });
  first->replay();
  const size_t held = cuda::memory_stats(0).graph_held_frees;
  ASSERT_GE(held, 1u);
  cuda::Graph second;
  Tensor z;
  second.capture([&] {
    first.reset();  // prints that its memory is kept
    z = add(x, 1.0);
  });
  second.replay();
  EXPECT_TRUE(bitwise_equal(z, add(x, 1.0)));
  EXPECT_TRUE(bitwise_equal(y, mul(mul(x, 3.0), 2.0))) << "the first graph's output survives";
  EXPECT_EQ(cuda::memory_stats(0).graph_held_frees, held) << "the block the first graph may still use was released";
}

TEST(CudaGraph, DropoutAndHostScalarOptimizersInsideTheCaptureAreErrors) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({8, 8}, 4);
  cuda::Graph g;
  EXPECT_KIRZL_ERROR(g.capture([&] { (void)dropout(x, 0.1, true); }), ErrorCode::Unsupported, "dropout",
                     "cannot run inside CUDA graph capture");
  Tensor w = batch({8}, 5).requires_grad_();
  optim::AdamW opt(std::vector<Tensor>{w});
  sum(mul(w, w)).backward();
  EXPECT_KIRZL_ERROR(g.capture([&] { opt.step(); }), ErrorCode::Unsupported, "AdamW.step",
                     "cannot run inside CUDA graph capture");
  optim::AdamW fresh(std::vector<Tensor>{w}, {.capturable = true});  // its first step is not captured
  EXPECT_KIRZL_ERROR(g.capture([&] { fresh.step(); }), ErrorCode::Unsupported, "AdamW.step", "before a CUDA graph capture");
  Tensor y;
  g.capture([&] { y = dropout(x, 0.0, true); });  // p = 0 is the identity: capturable
  EXPECT_TRUE(g.captured());
}

TEST(CudaGraph, MisuseIsAClearError) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  cuda::Graph g;
  EXPECT_KIRZL_ERROR(g.replay(), ErrorCode::InvalidArgument, "replay", "capture(step) first");
  Tensor x = batch({4}, 6), y;
  g.capture([&] { y = add(x, 1.0); });
  EXPECT_KIRZL_ERROR(g.capture([&] { y = add(x, 2.0); }), ErrorCode::InvalidArgument, "already captured");
  cuda::Graph inner;
  cuda::Graph outer;
  EXPECT_KIRZL_ERROR(outer.capture([&] { inner.capture([&] { y = add(x, 3.0); }); }), ErrorCode::InvalidArgument,
                     "captures cannot nest");
  cuda::Graph moved = std::move(g);
  EXPECT_FALSE(g.captured());
  EXPECT_KIRZL_ERROR(g.replay(), ErrorCode::InvalidArgument, "moved from");
  moved.replay();
  EXPECT_TRUE(bitwise_equal(y, add(x, 1.0)));
}

TEST(CudaGraph, ReplaysOnAnotherStreamAreOrderedAfterThePreviousReplay) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor acc = zeros({1 << 16}, {.device = test_gpu()});
  cuda::Graph g;
  g.capture([&] { acc.add_(ones_like(acc)); });
  cuda::Stream side(0);
  for (int i = 0; i < 10; ++i) {
    if (i % 2) {
      cuda::StreamGuard guard(side);
      g.replay();
    } else {
      g.replay();
    }
  }
  side.synchronize();
  cuda::synchronize(0);
  EXPECT_EQ(max(acc).item(), 10.0);
  EXPECT_EQ(min(acc).item(), 10.0);
}

TEST(CudaGraph, DestroyedGraphsMemoryGoesBackToTheDriver) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({1 << 20}, 7);
  cuda::empty_cache();
  const cuda::MemoryStats before = cuda::memory_stats(0);
  {
    cuda::Graph g;
    Tensor y;
    g.capture([&] {
      Tensor tmp = mul(x, 2.0);  // freed inside the capture, reused there
      y = add(tmp, 1.0);
    });
    g.replay();
    EXPECT_GT(cuda::memory_stats(0).reserved_bytes, before.reserved_bytes) << "the graph has its own pool";
  }  // y and the graph die: the pool is entirely free
  cuda::empty_cache();
  const cuda::MemoryStats after = cuda::memory_stats(0);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(after.graph_held_frees, 0u);
}

TEST(CudaGraph, TensorFreedDuringTheCaptureIsNotReusedWhileTheGraphLives) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({1 << 18}, 8);
  Tensor old = batch({1 << 18}, 9);
  const void* old_ptr = old.data_ptr();
  Tensor y;
  cuda::Graph g;
  g.capture([&] {
    y = add(x, old);
    old = Tensor();  // the graph still reads it at every replay
  });
  EXPECT_EQ(cuda::memory_stats(0).graph_held_frees, 1u);
  Tensor eager = empty({1 << 18}, {.device = test_gpu()});
  EXPECT_NE(eager.data_ptr(), old_ptr);
  g.replay();
  EXPECT_TRUE(bitwise_equal(y, add(x, batch({1 << 18}, 9))));
}

// A pool segment whose blocks were all freed within the capture (here a 16 MiB temporary, its own
// segment) is written by every replay: empty_cache() while the graph lives must keep it (Note
// [cuda graph memory]); had it gone back to the driver, the next cudaMalloc could hand the same
// addresses to `eager`, which the replay would then overwrite.
TEST(CudaGraph, EmptyCacheWhileTheGraphLivesKeepsItsMemory) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor x = batch({1 << 22}, 13);
  cuda::empty_cache();
  Tensor y;
  cuda::Graph g;
  g.capture([&] { y = sum(mul(x, 2.0)); });  // the product is freed inside the capture
  const cuda::MemoryStats captured = cuda::memory_stats(0);
  cuda::empty_cache();
  EXPECT_EQ(cuda::memory_stats(0).reserved_bytes, captured.reserved_bytes) << "the live graph's pool was released";
  Tensor eager = full({1 << 22}, 7.0, {.device = test_gpu()});
  g.replay();
  EXPECT_EQ(min(eager).item(), 7.0) << "the replay wrote into memory handed to eager work";
  EXPECT_EQ(max(eager).item(), 7.0) << "the replay wrote into memory handed to eager work";
  EXPECT_TRUE(bitwise_equal(y, sum(mul(x, 2.0))));
}

// A parameter that had no gradient in the warm-up gets its first update inside the capture: its
// moments (and a 16-bit parameter's master) would be created by kernels recorded in the graph,
// so every replay would zero them again. Refused before anything is counted.
TEST(CudaGraph, FirstUpdateOfAParameterInsideTheCaptureIsAnError) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor a = batch({8}, 14).requires_grad_(), b = batch({8}, 15).requires_grad_();
  optim::AdamW opt(std::vector<Tensor>{a, b}, {.capturable = true});
  a.set_grad(batch({8}, 16));
  opt.step();  // warm-up: b has no gradient yet
  b.set_grad(batch({8}, 17));
  cuda::Graph g;
  EXPECT_KIRZL_ERROR(g.capture([&] { opt.step(); }), ErrorCode::Unsupported, "AdamW.step",
                     "cannot run inside CUDA graph capture", "parameter 1 gets its first update");
  EXPECT_FALSE(g.captured());
  EXPECT_EQ(opt.step_count(0), 1);
  EXPECT_EQ(opt.step_count(1), 0);
  opt.step();  // eagerly: b's state is created
  g.capture([&] { opt.step(); });
  EXPECT_TRUE(g.captured());
}

// The device's first deferred index check held by a captured step: its flag is made with calls a
// capture forbids (cudaMalloc, a stream synchronisation), so capture() makes it before the capture
// begins. (ctest runs each test in its own process, where nothing before has made the flag.)
TEST(CudaGraph, DevicesFirstIndexCheckCanBeCaptured) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor table = batch({16, 4}, 18);
  Tensor idx = labels({5}, 16, 19);
  Tensor out;
  cuda::Graph g;
  g.capture([&] { out = embedding(table, idx); });
  g.replay();
  EXPECT_TRUE(bitwise_equal(out, embedding(table, idx)));
}

// set_lr (a scheduler's step) inside the captured step would record the write of the device lr in
// the graph: every replay would reset lr to the captured value. Refused; the lr stays as it was.
TEST(CudaGraph, SetLrInsideTheCaptureIsAnError) {
  KIRZL_REQUIRE_REAL_GPU("CUDA graphs");
  Tensor w = batch({8}, 20).requires_grad_();
  optim::AdamW opt(std::vector<Tensor>{w}, {.lr = 1e-2, .capturable = true});
  optim::StepLR sched(opt, {.step_size = 1, .gamma = 0.5});
  w.set_grad(batch({8}, 21));
  opt.step();
  cuda::Graph g;
  EXPECT_KIRZL_ERROR(g.capture([&] {
                       opt.step();
                       sched.step();
                     }),
                     ErrorCode::Unsupported, "AdamW.set_lr", "cannot run inside CUDA graph capture");
  EXPECT_EQ(opt.lr(), 1e-2);
  g.capture([&] { opt.step(); });
  opt.set_lr(1e-3);  // between replays: reaches the next replay
  EXPECT_EQ(opt.lr(), 1e-3);
}
