// Learning-rate schedules: exact values at chosen steps (computed by hand), group scaling,
// state dicts, bad options.
#include <gtest/gtest.h>

#include <kirzl/optim/lr_scheduler.hpp>
#include <kirzl/optim/sgd.hpp>

#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

std::vector<Tensor> two_params() {
  return {zeros({2}, {.dtype = DType::f64, .requires_grad = true}), zeros({3}, {.dtype = DType::f64, .requires_grad = true})};
}

/// Steps `sched` until last_step() == step.
void advance_to(LRScheduler& sched, int64_t step) {
  while (sched.last_step() < step) sched.step();
}

TEST(LRScheduler, ConstantLR) {
  SGD opt(two_params(), {.lr = 0.3});
  ConstantLR sched(opt);
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(opt.lr(), 0.3);
    sched.step();
  }
  EXPECT_EQ(sched.last_step(), 4);
}

TEST(LRScheduler, StepLRExactValues) {
  SGD opt(two_params(), {.lr = 0.1});
  StepLR sched(opt, {.step_size = 3, .gamma = 0.5});
  const double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
  for (int s = 0; s < 8; ++s) {
    EXPECT_EQ(sched.last_step(), s);
    EXPECT_DOUBLE_EQ(opt.lr(), want[s]) << "step " << s;
    EXPECT_DOUBLE_EQ(sched.get_lr()[0], want[s]) << "step " << s;
    sched.step();
  }
}

TEST(LRScheduler, CosineWithWarmupExactValues) {
  SGD opt(two_params(), {.lr = 0.1});
  CosineWithWarmup sched(opt, {.warmup_steps = 4, .total_steps = 12, .min_lr = 0.01});
  EXPECT_DOUBLE_EQ(opt.lr(), 0.0);  // step 0 of the warm-up
  advance_to(sched, 1);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.025);
  advance_to(sched, 2);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.05);
  advance_to(sched, 4);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.1);
  advance_to(sched, 6);  // progress 1/4: 0.01 + 0.09 · (1 + cos(π/4)) / 2
  EXPECT_NEAR(opt.lr(), 0.0868198051533946, 1e-15);
  advance_to(sched, 8);  // progress 1/2
  EXPECT_NEAR(opt.lr(), 0.055, 1e-15);
  advance_to(sched, 12);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.01);
  advance_to(sched, 20);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.01);
}

TEST(LRScheduler, LinearDecayExactValues) {
  SGD opt(two_params(), {.lr = 0.2});
  LinearDecay sched(opt, {.total_steps = 10, .end_factor = 0.1});
  EXPECT_DOUBLE_EQ(opt.lr(), 0.2);
  advance_to(sched, 5);
  EXPECT_NEAR(opt.lr(), 0.11, 1e-15);
  advance_to(sched, 10);
  EXPECT_NEAR(opt.lr(), 0.02, 1e-15);
  advance_to(sched, 15);
  EXPECT_NEAR(opt.lr(), 0.02, 1e-15);
}

TEST(LRScheduler, LinearDecayWithWarmup) {
  SGD opt(two_params(), {.lr = 0.2});
  LinearDecay sched(opt, {.total_steps = 10, .end_factor = 0.1, .warmup_steps = 2});
  EXPECT_DOUBLE_EQ(opt.lr(), 0.0);
  advance_to(sched, 1);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.1);
  advance_to(sched, 2);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.2);
  advance_to(sched, 6);  // halfway through the decay
  EXPECT_NEAR(opt.lr(), 0.11, 1e-15);
  advance_to(sched, 10);
  EXPECT_NEAR(opt.lr(), 0.02, 1e-15);
}

TEST(LRScheduler, EachGroupIsScaledFromItsOwnBaseLr) {
  auto ps = two_params();
  SGD opt(std::vector<ParamGroup>{{.params = {ps[0]}}, {.params = {ps[1]}, .lr = 0.02}}, {.lr = 0.1});
  StepLR sched(opt, {.step_size = 2, .gamma = 0.1});
  advance_to(sched, 2);
  EXPECT_NEAR(opt.lr(0), 0.01, 1e-15);
  EXPECT_NEAR(opt.lr(1), 0.002, 1e-15);
  EXPECT_DOUBLE_EQ(opt.initial_lr(1), 0.02);
  auto lrs = sched.get_lr();
  ASSERT_EQ(lrs.size(), 2u);
  EXPECT_DOUBLE_EQ(lrs[1], opt.lr(1));
}

TEST(LRScheduler, DrivesTheOptimizerStep) {
  // SGD on loss = ½ w² (grad = w) with StepLR: w ← w (1 - lr_s).
  Tensor w = full({1}, 1.0, {.dtype = DType::f64, .requires_grad = true});
  SGD opt({w}, {.lr = 0.5});
  StepLR sched(opt, {.step_size = 1, .gamma = 0.5});
  double ref = 1.0, lr = 0.5;
  for (int s = 0; s < 5; ++s) {
    w.set_grad(w.detach().clone());
    opt.step();
    sched.step();
    ref *= 1 - lr;
    lr *= 0.5;
    EXPECT_DOUBLE_EQ(w.item(), ref);
  }
}

TEST(LRScheduler, StateDictRestoresTheStep) {
  SGD opt(two_params(), {.lr = 0.1});
  CosineWithWarmup sched(opt, {.warmup_steps = 2, .total_steps = 10});
  advance_to(sched, 5);
  StateDict sd = sched.state_dict();
  EXPECT_EQ(sd.at("last_step").item(), 5.0);

  SGD opt2(two_params(), {.lr = 0.1});
  CosineWithWarmup sched2(opt2, {.warmup_steps = 2, .total_steps = 10});
  sched2.load_state_dict(sd);
  EXPECT_EQ(sched2.last_step(), 5);
  EXPECT_DOUBLE_EQ(opt2.lr(), opt.lr());
  sched.step();
  sched2.step();
  EXPECT_DOUBLE_EQ(opt2.lr(), opt.lr());

  StateDict bad;
  bad.insert("last_step", scalar_tensor(-1.0, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(sched2.load_state_dict(bad), ErrorCode::InvalidArgument, "last_step", "-1");
  EXPECT_KIRZL_ERROR(sched2.load_state_dict(StateDict{}), ErrorCode::InvalidArgument, "last_step");
  EXPECT_EQ(sched2.last_step(), 6);
}

TEST(LRScheduler, BadOptionsNameTheOption) {
  SGD opt(two_params(), {.lr = 0.1});
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(StepLR(opt, {.step_size = 0}), E::InvalidArgument, "StepLR", "step_size", "0");
  EXPECT_KIRZL_ERROR(StepLR(opt, {.step_size = 2, .gamma = -0.5}), E::InvalidArgument, "StepLR", "gamma", "-0.5");
  EXPECT_KIRZL_ERROR(CosineWithWarmup(opt, {.warmup_steps = 5, .total_steps = 3}), E::InvalidArgument,
                     "CosineWithWarmup", "total_steps", "3");
  EXPECT_KIRZL_ERROR(CosineWithWarmup(opt, {.warmup_steps = -1, .total_steps = 3}), E::InvalidArgument,
                     "warmup_steps", "-1");
  EXPECT_KIRZL_ERROR(CosineWithWarmup(opt, {.total_steps = 3, .min_lr = -0.1}), E::InvalidArgument, "min_lr", "-0.1");
  EXPECT_KIRZL_ERROR(LinearDecay(opt, {.total_steps = 0}), E::InvalidArgument, "LinearDecay", "total_steps", "0");
  EXPECT_KIRZL_ERROR(LinearDecay(opt, {.total_steps = 4, .end_factor = -2.0}), E::InvalidArgument, "end_factor", "-2");
  // A failed construction leaves the optimizer's lr alone.
  EXPECT_DOUBLE_EQ(opt.lr(), 0.1);
}

}  // namespace
}  // namespace kirzl::optim
