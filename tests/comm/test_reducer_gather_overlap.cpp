// The parameters' all-gather after a sharded step, overlapped with the next forward (Note
// [parameter gather overlap]): issued in the order the forward uses the buckets, waited module by
// module between the layers, the same training as plain DDP (GPT's loss and fused_loss too), a
// parameter read past its module is an error, evaluation and a failed wait behave.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include "comm/queued_communicator.h"
#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"
#include "support/param_diff.hpp"

using namespace kirzl;
using kirzl::testing::run_rank_threads;
namespace nn = kirzl::nn;

namespace {

// Tiny bucket caps: every parameter in a bucket of its own (checked by expect_one_layer_per_bucket).
DDPOptions tiny_buckets(Shard shard, bool overlap_gather = true) {
  return {.bucket_cap_mb = 0.0001, .first_bucket_cap_mb = 0.0001, .shard = shard,
          .overlap_parameter_gather = overlap_gather};
}

// Four Linear layers (at 0, 2, 4, 6), each layer's parameters in buckets of their own.
std::shared_ptr<nn::Sequential> make_stack() {
  return std::make_shared<nn::Sequential>(nn::Linear(6, 8), nn::ReLU(), nn::Linear(8, 8), nn::ReLU(),
                                          nn::Linear(8, 8), nn::ReLU(), nn::Linear(8, 3));
}

bool pending(const Tensor& p) { return p.autograd_meta() != nullptr && p.autograd_meta()->gather_pending; }

// Per Linear of the stack: true when its weight or bias still waits for its all-gather.
std::vector<bool> pending_layers(const nn::Module& model) {
  std::vector<bool> out;
  for (const auto& [name, child] : model.named_children()) {
    std::vector<Tensor> ps = child->parameters();
    if (ps.empty()) continue;
    out.push_back(pending(ps[0]) || pending(ps[1]));
  }
  return out;
}

void expect_one_layer_per_bucket(const DistributedDataParallel& ddp) {
  for (const BucketInfo& b : ddp.buckets()) ASSERT_EQ(b.param_names.size(), 1u) << b.tag;
}

// One training step on this rank's slice of a fixed global batch.
void train_step(DistributedDataParallel& ddp, optim::Optimizer& opt, int rank, int world, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({4 * world, 6}, {}, &g).narrow(0, 4 * rank, 4);
  Tensor y = randint(0, 3, {4 * world}, {.dtype = DType::i64}, &g).narrow(0, 4 * rank, 4);
  opt.zero_grad();
  cross_entropy(ddp(x), y).backward();
  opt.step();
}

}  // namespace

TEST(GatherOverlap, TheForwardWaitsForEachLayersBucketsJustBeforeTheLayer) {
  for (Shard shard : {Shard::optimizer, Shard::gradients})
    run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(3);
      auto model = make_stack();
      DistributedDataParallel ddp(*model, c, tiny_buckets(shard));
      expect_one_layer_per_bucket(ddp);
      auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
      train_step(ddp, *opt, rank, 2, 1);
      // After the step every layer waits for its parameters.
      EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, true));
      // What each layer sees when it runs (its hook runs after DDP's): itself and the layers
      // before it gathered, the layers after it still in flight.
      std::vector<std::vector<bool>> seen;
      std::vector<std::pair<std::shared_ptr<nn::Module>, uint64_t>> hooks;
      for (const auto& [name, child] : model->named_children())
        if (!child->parameters().empty())
          hooks.emplace_back(child, child->register_forward_pre_hook([&](nn::Module&) {
            seen.push_back(pending_layers(*model));
          }));
      Tensor out = ddp(randn({4, 6}));
      ASSERT_EQ(seen.size(), 4u);
      for (size_t k = 0; k < 4; ++k)
        for (size_t j = 0; j < 4; ++j)
          EXPECT_EQ(seen[k][j], j > k) << "rank " << rank << ": at layer " << k << ", layer " << j << " is "
                                       << (seen[k][j] ? "still pending" : "gathered");
      EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, false)) << "nothing is in flight after forward";
      for (auto& [m, h] : hooks) EXPECT_TRUE(m->remove_forward_pre_hook(h));
    });
}

TEST(GatherOverlap, TheGathersAreIssuedInTheOrderTheForwardUsesThem) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    auto model = make_stack();
    DistributedDataParallel ddp(*model, c, tiny_buckets(Shard::optimizer));
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    train_step(ddp, *opt, rank, 2, 1);
    ddp.synchronize_parameters();
    auto* queued = dynamic_cast<comm::detail::QueuedCommunicator*>(c.get());
    ASSERT_NE(queued, nullptr);
    std::vector<std::string> gathered;
    for (const auto& r : queued->recorder().snapshot())
      if (r.desc.tag.rfind("parameters of ", 0) == 0) gathered.push_back(r.desc.tag);
    const std::vector<BucketInfo>& buckets = ddp.buckets();
    ASSERT_EQ(gathered.size(), buckets.size());
    // The last bucket holds the first layer's parameters: it goes first.
    for (size_t k = 0; k < gathered.size(); ++k)
      EXPECT_EQ(gathered[k], "parameters of " + buckets[buckets.size() - 1 - k].tag) << "rank " << rank;
  });
}

TEST(GatherOverlap, WithoutOverlapTheForwardWaitsForEverythingFirst) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    auto model = make_stack();
    DistributedDataParallel ddp(*model, c, tiny_buckets(Shard::gradients, false));
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    train_step(ddp, *opt, rank, 2, 1);
    std::vector<bool> at_first_layer;
    auto first = model->named_children().front().second;
    uint64_t h = first->register_forward_pre_hook([&](nn::Module&) { at_first_layer = pending_layers(*model); });
    ddp(randn({4, 6}));
    EXPECT_EQ(at_first_layer, std::vector<bool>(4, false)) << "rank " << rank;
    first->remove_forward_pre_hook(h);
  });
}

namespace {

// A model whose forward reads its second layer's weights itself instead of calling it.
struct Peeker : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Peeker() {
    fc1 = register_module("fc1", nn::as_module(nn::Linear(6, 8)));
    fc2 = register_module("fc2", nn::as_module(nn::Linear(8, 3)));
  }
  Tensor forward(const Tensor& x) override { return linear(relu((*fc1)(x)), fc2->weight, fc2->bias); }
};

}  // namespace

TEST(GatherOverlap, AParameterReadPastItsModuleIsAnErrorUnlessOverlapIsOff) {
  for (bool overlap_gather : {true, false})
    run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(3);
      Peeker model;
      DistributedDataParallel ddp(model, c, tiny_buckets(Shard::optimizer, overlap_gather));
      auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
      train_step(ddp, *opt, rank, 2, 1);  // the first forward: nothing in flight yet
      Tensor x = randn({4, 6});
      // The step's all-gathers run before this barrier (one rank's collectives run in order), but
      // DDP has not waited for them, so their parameters are still marked pending: the misuse
      // below is detected without reading memory that a gather still writes (a real race, which
      // the ThreadSanitizer run would report).
      c->barrier().wait();
      if (overlap_gather) {
        EXPECT_KIRZL_ERROR(ddp(x), ErrorCode::InvalidArgument, "linear", "[3, 8]", "operator()",
                           "run_forward_pre_hooks()", "overlap_parameter_gather = false");
        // The fix the message names: the parent runs the child's hooks before reading its weights.
        model.fc2->run_forward_pre_hooks();
        EXPECT_NO_THROW(ddp(x));
      } else {
        EXPECT_NO_THROW(train_step(ddp, *opt, rank, 2, 2));
        EXPECT_NO_THROW(ddp(x));
      }
    });
}

TEST(GatherOverlap, EvaluationAfterAStepSeesTheGatheredParameters) {
  // Rank 0's eval outputs right after a step, [0] with overlap and [1] without: through DDP, and
  // through the module directly.
  std::vector<std::vector<float>> through_ddp(2), direct(2);
  for (bool overlap_gather : {true, false})
    run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(3);
      auto model = make_stack();
      DistributedDataParallel ddp(*model, c, tiny_buckets(Shard::gradients, overlap_gather));
      auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 0.05});
      for (uint64_t step = 0; step < 3; ++step) train_step(ddp, *opt, rank, 2, step);
      Generator g(9);
      Tensor x = randn({5, 6}, {}, &g);
      {
        NoGradGuard no_grad;
        Tensor y = ddp(x);  // waits for every bucket before the module runs
        EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, false));
        if (rank == 0) through_ddp[overlap_gather ? 0 : 1] = y.to_vector<float>();
      }
      train_step(ddp, *opt, rank, 2, 7);
      // Without overlap nothing hooks the modules: reading them outside ddp.forward() needs
      // synchronize_parameters() (the reference); with it, the layers' hooks wait.
      if (!overlap_gather) ddp.synchronize_parameters();
      NoGradGuard no_grad;
      Tensor z = (*model)(x);
      if (rank == 0) direct[overlap_gather ? 0 : 1] = z.to_vector<float>();
    });
  EXPECT_EQ(through_ddp[0], through_ddp[1]);
  EXPECT_EQ(direct[0], direct[1]);
  EXPECT_NE(through_ddp[0], direct[0]) << "the last step should change the output";
}

namespace {

// A model with a layer its forward never calls.
struct WithUnused : nn::Module {
  std::shared_ptr<nn::Linear> used, unused;
  WithUnused() {
    used = register_module("used", nn::as_module(nn::Linear(6, 3)));
    unused = register_module("unused", nn::as_module(nn::Linear(6, 16)));
  }
  Tensor forward(const Tensor& x) override { return (*used)(x); }
};

}  // namespace

TEST(GatherOverlap, AnUnusedModulesBucketsAreWaitedWhenTheForwardEnds) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    WithUnused model;
    DDPOptions o = tiny_buckets(Shard::gradients);
    o.find_unused_parameters = true;
    DistributedDataParallel ddp(model, c, o);
    for (const BucketInfo& b : ddp.buckets())  // else the used layer's wait would cover the unused one
      ASSERT_FALSE(b.tag.find("unused") != std::string::npos && b.tag.find(" used") != std::string::npos) << b.tag;
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    for (int step = 0; step < 2; ++step) {
      opt->zero_grad();
      Tensor out = ddp(randn({4, 6}));
      EXPECT_FALSE(pending(model.unused->weight) || pending(model.unused->bias)) << "rank " << rank << " step " << step;
      cross_entropy(out, zeros({4}, {.dtype = DType::i64})).backward();
      opt->step();
    }
  });
}

TEST(GatherOverlap, TheStepStatsSayHowLongTheForwardWaitedForTheGathers) {
  for (bool overlap_gather : {true, false})
    run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(3);
      auto model = make_stack();
      DistributedDataParallel ddp(*model, c, tiny_buckets(Shard::optimizer, overlap_gather));
      auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
      Tensor x = randn({4, 6});
      cross_entropy(ddp(x), zeros({4}, {.dtype = DType::i64})).backward();
      EXPECT_EQ(ddp.last_step_stats().gather_wait_ms, 0.0) << "nothing was in flight";
      // Rank 1 steps (and so joins the all-gathers) 100 ms late: rank 0's forward waits for it.
      if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      opt->step();
      ddp(x);
      const DDPStepStats& s = ddp.last_step_stats();
      if (rank == 0) EXPECT_GE(s.gather_wait_ms, 50.0) << (overlap_gather ? "overlapped" : "up front");
      EXPECT_GE(s.forward_ms, s.gather_wait_ms);
    });
}

TEST(GatherOverlap, ADestroyedDDPLeavesNoHookAndNoMarkOnTheModule) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    auto model = make_stack();
    {
      DistributedDataParallel ddp(*model, c, tiny_buckets(Shard::optimizer));
      auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
      train_step(ddp, *opt, rank, 2, 1);
      EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, true));
    }  // destroyed with the gathers in flight
    EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, false));
    Tensor y = (*model)(randn({4, 6}));  // a hook left behind would call into the destroyed DDP
    EXPECT_EQ(y.size(1), 3);
  });
}

TEST(GatherOverlap, AFailedWaitRaisesTheCommunicatorsErrorOnceAndLeavesNothingMarked) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    auto model = make_stack();
    DDPOptions o = tiny_buckets(Shard::optimizer);
    o.timeout = std::chrono::milliseconds(300);
    DistributedDataParallel ddp(*model, c, o);
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    Tensor x = randn({4, 6});
    cross_entropy(ddp(x), zeros({4}, {.dtype = DType::i64})).backward();
    if (rank == 1) return;  // rank 1 never joins the all-gathers: rank 0's time out
    opt->step();
    EXPECT_KIRZL_ERROR(ddp(x), ErrorCode::Timeout, "parameters of bucket");
    EXPECT_EQ(pending_layers(*model), std::vector<bool>(4, false)) << "no parameter is left marked";
    // Nothing is waited again: a forward without communication runs (no hook throws).
    NoGradGuard no_grad;
    EXPECT_NO_THROW(ddp(x));
    EXPECT_NO_THROW((*model)(x));
  });
}

namespace {

models::GPTConfig small_gpt() { return {.vocab_size = 13, .block_size = 8, .n_layer = 3, .n_head = 2, .n_embd = 8}; }

// DDP runs forward(Tensor): this root takes [B, 2T] (tokens then targets) and returns GPT's loss or
// fused_loss, which call (loss) or read (fused_loss) the GPT's submodules, so their hooks do the
// waiting. The GPT itself is never called through operator() (its hook would wait for every bucket).
struct GptLoss : nn::Module {
  std::shared_ptr<models::GPT> gpt;
  bool fused;
  GptLoss(const models::GPTConfig& c, bool f) : fused(f) { gpt = register_module("gpt", std::make_shared<models::GPT>(c)); }
  Tensor forward(const Tensor& x) override {
    const int64_t T = x.size(1) / 2;
    Tensor idx = x.narrow(1, 0, T).contiguous(), tgt = x.narrow(1, T, T).contiguous();
    return fused ? gpt->fused_loss(idx, tgt) : gpt->loss(idx, tgt);
  }
};

// Trains a small GPT for 6 steps with AdamW on 2 ranks; returns each rank's final parameters.
std::vector<std::vector<std::vector<float>>> train_gpt(Shard shard, bool fused) {
  std::vector<std::vector<std::vector<float>>> out(2);
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(5);
    GptLoss model(small_gpt(), fused);
    // A bucket per parameter: the waits interleave with the blocks, and a module whose hooks
    // fused_loss forgot to run would not have its parameters waited by a neighbour's hook.
    DistributedDataParallel ddp(model, c, {.bucket_cap_mb = 1e-5, .first_bucket_cap_mb = 1e-5, .shard = shard});
    for (const BucketInfo& b : ddp.buckets()) EXPECT_EQ(b.param_names.size(), 1u) << b.tag;
    auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 0.02, .weight_decay = 0.1});
    for (uint64_t step = 0; step < 6; ++step) {
      Generator g(40 + step);
      Tensor batch = randint(0, 13, {4, 16}, {.dtype = DType::i64}, &g).narrow(0, 2 * rank, 2);
      opt->zero_grad();
      ddp(batch).backward();
      opt->step();
    }
    ddp.synchronize_parameters();
    for (auto& p : model.parameters()) out[rank].push_back(p.to_vector<float>());
  });
  return out;
}

using kirzl::testing::max_diff;

}  // namespace

TEST(GatherOverlap, GptLossAndFusedLossTrainLikePlainDDP) {
  for (bool fused : {false, true}) {
    auto plain = train_gpt(Shard::none, fused);
    for (Shard shard : {Shard::optimizer, Shard::gradients}) {
      SCOPED_TRACE(std::string(shard == Shard::optimizer ? "ZeRO-1" : "ZeRO-2") + (fused ? ", fused_loss" : ", loss"));
      auto sharded = train_gpt(shard, fused);
      for (int r = 0; r < 2; ++r) EXPECT_LE(max_diff(sharded[r], plain[0]), 1e-6) << "rank " << r;
    }
  }
}
