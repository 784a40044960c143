// Sharded data parallelism (DDPOptions::shard, Note [sharded optimizer]) on the in-process
// backend: ZeRO-1 and ZeRO-2 must train exactly like plain DDP (to 1e-6 over 20 steps) for every
// optimizer, with param groups and a schedule, clipping, accumulation, loss scaling and bf16
// weights, at 2, 3 and 4 ranks; each rank must hold only its shard's state; misuse is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <thread>

#include <kirzl/amp.hpp>
#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include "comm/reducer_impl.h"
#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"
#include "support/param_diff.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
namespace nn = kirzl::nn;

using kirzl::testing::run_rank_threads;

namespace {

// Uneven sizes (12*16 + 16, 16*7 + 7, 7*3 + 3), so that chunks cut through tensors.
std::shared_ptr<nn::Module> make_model() {
  return std::make_shared<nn::Sequential>(nn::Linear(12, 16), nn::GELU(), nn::Linear(16, 7), nn::ReLU(),
                                          nn::Linear(7, 3));
}

struct Setup {
  std::string optimizer = "AdamW";  // SGD, Adam, AdamW, LAMB
  bool clip = false;                // ddp.clip_grad_norm_(0.05) every step (it does clip)
  int accumulate = 1;               // micro-batches per step; all but the last under no_sync()
  bool groups = false;              // two param groups (weights, biases) and a cosine schedule
  bool scaler = false;              // GradScaler with a large scale
  bool bf16 = false;                // bf16 weights, f32 master weights in the optimizer
};

std::unique_ptr<optim::Optimizer> build(DistributedDataParallel& ddp, const Setup& s) {
  std::vector<optim::ParamGroup> groups;
  if (s.groups) {
    optim::ParamGroup weights, biases{.params = {}, .lr = 0.02, .weight_decay = 0.0};
    for (auto& [name, p] : ddp.module().named_parameters())
      (name.find("bias") != std::string::npos ? biases : weights).params.push_back(p);
    groups = {weights, biases};
  } else {
    groups = {optim::ParamGroup{.params = ddp.trainable_parameters()}};
  }
  if (s.optimizer == "SGD") return ddp.make_optimizer<optim::SGD>(groups, {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01});
  if (s.optimizer == "Adam") return ddp.make_optimizer<optim::Adam>(groups, {.lr = 0.01, .weight_decay = 0.01});
  if (s.optimizer == "AdamW") return ddp.make_optimizer<optim::AdamW>(groups, {.lr = 0.01, .weight_decay = 0.1});
  return ddp.make_optimizer<optim::LAMB>(groups, {.lr = 0.01, .weight_decay = 0.01});
}

// Trains 20 steps on n ranks (per-rank batch 4 of a global batch 4n per micro-batch) and returns
// every rank's final parameters as f32.
std::vector<std::vector<std::vector<float>>> train(int n, Shard shard, const Setup& s, int steps = 20,
                                                   bool overlap_gather = true) {
  std::vector<std::vector<std::vector<float>>> out(n);
  run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    if (s.bf16) model->to(DType::bf16);
    DistributedDataParallel ddp(*model, c, {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002, .shard = shard,
                                           .overlap_parameter_gather = overlap_gather});
    auto opt = build(ddp, s);
    std::unique_ptr<optim::LRScheduler> schedule;
    if (s.groups)
      schedule = std::make_unique<optim::CosineWithWarmup>(*opt, optim::CosineWithWarmupOptions{.warmup_steps = 3, .total_steps = 20});
    amp::GradScaler scaler({.init_scale = 1024.0, .enabled = s.scaler}, c.get());
    for (int step = 0; step < steps; ++step) {
      opt->zero_grad();
      for (int micro = 0; micro < s.accumulate; ++micro) {
        Generator g(100 * step + micro);
        Tensor x = randn({4 * n, 12}, {}, &g).narrow(0, 4 * rank, 4);
        Tensor y = randint(0, 3, {4 * n}, {.dtype = DType::i64}, &g).narrow(0, 4 * rank, 4);
        if (s.bf16) x = x.to(DType::bf16);
        Tensor loss = cross_entropy(ddp(x).to(DType::f32), y) * (1.0 / s.accumulate);
        if (micro + 1 < s.accumulate) {
          auto guard = ddp.no_sync();
          scaler.scale(loss).backward();
        } else {
          scaler.scale(loss).backward();
        }
      }
      if (s.scaler) scaler.unscale_(*opt);
      if (s.clip) ddp.clip_grad_norm_(0.05);
      scaler.step(*opt);
      scaler.update();
      if (schedule) schedule->step();
    }
    ddp.synchronize_parameters();
    for (auto& p : model->parameters()) out[rank].push_back(p.to(DType::f32).to_vector<float>());
  });
  return out;
}

using kirzl::testing::max_diff;

// Every rank of the sharded run equals rank 0 of the plain run, with the parameters' all-gather
// overlapped with the forward (Note [parameter gather overlap]) and without, and the run moved
// the weights.
void expect_like_plain(int n, const Setup& s, double tol = 1e-6) {
  auto plain = train(n, Shard::none, s);
  for (Shard shard : {Shard::optimizer, Shard::gradients})
    for (bool overlap_gather : {true, false}) {
      SCOPED_TRACE(std::string(shard == Shard::optimizer ? "ZeRO-1" : "ZeRO-2") + " at " + std::to_string(n) +
                   " ranks, " + s.optimizer + (overlap_gather ? ", gather overlapped" : ", gather waited up front"));
      auto sharded = train(n, shard, s, 20, overlap_gather);
      for (int r = 0; r < n; ++r) EXPECT_LE(max_diff(sharded[r], plain[0]), tol) << "rank " << r;
    }
  std::vector<std::vector<std::vector<float>>> start = train(n, Shard::none, s, 0);
  EXPECT_GT(max_diff(plain[0], start[0]), 1e-2) << "the run should change the weights";
}

class ShardEquivalence : public ::testing::TestWithParam<int> {};

TEST_P(ShardEquivalence, EveryOptimizerEqualsPlainDDP) {
  for (const char* o : {"SGD", "Adam", "AdamW", "LAMB"}) expect_like_plain(GetParam(), {.optimizer = o});
}

TEST_P(ShardEquivalence, ClippingByTheGlobalNormEqualsPlainDDP) {
  for (const char* o : {"SGD", "LAMB"}) expect_like_plain(GetParam(), {.optimizer = o, .clip = true});
}

TEST_P(ShardEquivalence, AccumulationUnderNoSyncEqualsPlainDDP) {
  expect_like_plain(GetParam(), {.optimizer = "AdamW", .accumulate = 3});
}

TEST_P(ShardEquivalence, ParamGroupsAndScheduleEqualPlainDDP) {
  expect_like_plain(GetParam(), {.optimizer = "AdamW", .groups = true});
}

TEST_P(ShardEquivalence, GradScalerEqualsPlainDDP) {
  expect_like_plain(GetParam(), {.optimizer = "Adam", .clip = true, .scaler = true});
}

INSTANTIATE_TEST_SUITE_P(Ranks, ShardEquivalence, ::testing::Values(2, 3, 4));

// bf16 weights with f32 master shards: the same f32 arithmetic on each element as plain DDP's
// full masters, so the weights agree to their own precision (the gradients' bf16 reductions
// may round differently: one bf16 step of a weight of size ~0.5 is 2^-9).
TEST(ShardBf16, MasterShardsTrainLikePlainDDP) { expect_like_plain(2, {.optimizer = "AdamW", .bf16 = true}, 4e-3); }

TEST(ShardMemory, EachRankKeepsOnlyItsShardOfTheOptimizerState) {
  const int n = 4;
  int64_t total = 0;
  for (auto& p : make_model()->parameters()) total += p.numel();
  for (Shard shard : {Shard::optimizer, Shard::gradients}) {
    std::vector<int64_t> state(n, 0), grads_left(n, -1);
    run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(7);
      auto model = make_model();
      DistributedDataParallel ddp(*model, c, {.shard = shard});
      auto opt = ddp.make_optimizer<optim::Adam>();
      Tensor x = randn({4, 12});
      cross_entropy(ddp(x), zeros({4}, {.dtype = DType::i64})).backward();
      opt->step();
      for (auto& [key, t] : opt->state_dict())
        if (key.find("exp_avg") != std::string::npos) state[rank] += t.numel();
      int64_t g = 0;
      for (auto& p : model->parameters())
        if (p.grad().defined()) g += p.grad().numel();
      grads_left[rank] = g;
    });
    int64_t sum = 0;
    for (int r = 0; r < n; ++r) {
      // Two moments per element of the shard: a quarter of the model each (one bucket, equal chunks).
      EXPECT_LE(state[r], 2 * ((total + n - 1) / n)) << "rank " << r;
      EXPECT_GT(state[r], 0) << "rank " << r;
      sum += state[r];
      // ZeRO-2 leaves no full-size gradient on any rank; ZeRO-1 keeps the all-reduced ones.
      EXPECT_EQ(grads_left[r], shard == Shard::gradients ? 0 : total) << "rank " << r;
    }
    EXPECT_EQ(sum, 2 * total);
  }
}

// Note [ZeRO-2 bucket lifetime]: during backward ZeRO-2 holds only the gradient buckets being
// filled; the reducer lets go of each full-size bucket buffer when its reduce-scatter is launched
// (the communicator frees it when the collective is done: test_in_process_communicator). Counted
// after every parameter's gradient, on every rank, over 12 buckets.
TEST(ShardMemory, ZeroTwoKeepsNoBucketBufferPastItsLaunchDuringBackward) {
  constexpr int kLayers = 12;
  constexpr int64_t kWidth = 64;  // 16.6 kB per layer: one bucket each
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = std::make_shared<nn::Sequential>();
    for (int l = 0; l < kLayers; ++l) model->push_back(nn::Linear(kWidth, kWidth));
    DistributedDataParallel ddp(*model, c, {.bucket_cap_mb = 0.02, .first_bucket_cap_mb = 0.02,
                                            .shard = Shard::gradients});
    ASSERT_EQ(ddp.buckets().size(), static_cast<size_t>(kLayers));
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.01});
    auto& impl = ddp_detail::ShardAccess::impl(ddp);
    size_t most = 0, hooks = 0;
    for (auto& p : model->parameters())
      p.register_post_accumulate_grad_hook([&](Tensor&) {
        size_t held = 0;
        for (const auto& b : impl.buckets) held += b.buffer.defined() ? 1 : 0;
        most = std::max(most, held);
        ++hooks;
      });
    for (int step = 0; step < 3; ++step) {
      opt->zero_grad();
      sum(ddp(randn({2, kWidth}))).backward();
      opt->step();
    }
    EXPECT_EQ(hooks, 3u * 2 * kLayers);
    // The bucket being filled, and the next one when a hook runs before the reducer's launch.
    EXPECT_LE(most, 2u) << "rank " << rank << " held that many full-size gradient buckets at once";
  });
}

TEST(ShardErrors, StepWithoutAReducedBackwardIsAnError) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.shard = Shard::optimizer});
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    expect_error([&] { opt->step(); }, ErrorCode::InvalidArgument, {"SGD.step()", "no reduced backward"});
    cross_entropy(ddp(randn({2, 12})), zeros({2}, {.dtype = DType::i64})).backward();
    opt->step();
    expect_error([&] { opt->step(); }, ErrorCode::InvalidArgument, {"no reduced backward since the last step"});
  });
}

TEST(ShardErrors, AnOptimizerNotMadeByDDPIsAnErrorAtBackward) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.shard = Shard::gradients});
    optim::SGD opt(model->parameters(), {.lr = 0.1});
    expect_error([&] { cross_entropy(ddp(randn({2, 12})), zeros({2}, {.dtype = DType::i64})).backward(); },
                 ErrorCode::InvalidArgument, {"make_optimizer"});
  });
}

TEST(ShardErrors, BadGroupsAndOptionsAreErrors) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    expect_error([&] { DistributedDataParallel(*model, c, {.comm_hook = comm_hooks::fp16_compress(), .shard = Shard::gradients}); },
                 ErrorCode::InvalidArgument, {"shard = gradients", "comm_hook"});
    DistributedDataParallel ddp(*model, c, {.shard = Shard::optimizer});
    Tensor stranger = zeros({3}).requires_grad_();
    expect_error([&] { ddp.make_optimizer<optim::SGD>({optim::ParamGroup{.params = {stranger}}}, {.lr = 0.1}); },
                 ErrorCode::InvalidArgument, {"not one of the module's trainable parameters"});
    Tensor w = model->parameters()[0];
    expect_error([&] { ddp.make_optimizer<optim::SGD>({optim::ParamGroup{.params = {w, w}}}, {.lr = 0.1}); },
                 ErrorCode::InvalidArgument, {"more than once"});
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    expect_error([&] { ddp.make_optimizer<optim::SGD>({.lr = 0.1}); }, ErrorCode::InvalidArgument, {"one optimizer"});
  });
}

TEST(ShardErrors, AnOptimizerOutlivingItsDDPFailsClearly) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    std::unique_ptr<optim::SGD> opt;
    {
      DistributedDataParallel ddp(*model, c, {.shard = Shard::optimizer});
      opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    }
    expect_error([&] { opt->step(); }, ErrorCode::InvalidArgument, {"was destroyed"});
  });
}

TEST(ShardParameters, EveryRankSeesTheWholeUpdatedModelAfterSynchronize) {
  std::vector<std::vector<float>> first(2);
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.shard = Shard::gradients});
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.5});
    auto before = model->parameters()[0].to_vector<float>();
    Generator g(3 + rank);  // different data per rank
    cross_entropy(ddp(randn({4, 12}, {}, &g)), zeros({4}, {.dtype = DType::i64})).backward();
    opt->step();
    ddp.synchronize_parameters();
    first[rank] = model->parameters()[0].to_vector<float>();
    EXPECT_NE(first[rank], before) << "rank " << rank << ": the first layer (owned by rank 0 mostly) must change";
  });
  EXPECT_EQ(first[0], first[1]);
}

}  // namespace
