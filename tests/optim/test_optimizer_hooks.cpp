// Optimizer hooks and whole-tensor declarations (Note [sharded optimizer] builds on both): hooks
// run in their place and order, a throwing pre-hook stops the step with nothing changed, and LAMB
// over pieces of a tensor equals LAMB over the tensor once the pieces are declared one whole.
#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;

namespace {

Tensor leaf(const std::vector<float>& values, const std::vector<float>& grad) {
  Tensor p = from_vector(values, {static_cast<int64_t>(values.size())});
  p.requires_grad_();
  p.set_grad(from_vector(grad, {static_cast<int64_t>(grad.size())}));
  return p;
}

}  // namespace

TEST(OptimizerHooks, RunAroundStepAndZeroGradInRegistrationOrder) {
  Tensor p = leaf({1, 2}, {1, 1});
  optim::SGD opt({optim::ParamGroup{.params = {p}}}, {.lr = 0.5});
  std::vector<std::string> log;
  opt.register_step_pre_hook([&](optim::Optimizer&, bool) { log.push_back("pre1 " + std::to_string(p.to_vector<float>()[0])); });
  opt.register_step_pre_hook([&](optim::Optimizer&, bool) { log.push_back("pre2"); });
  opt.register_step_post_hook([&](optim::Optimizer&, bool) { log.push_back("post " + std::to_string(p.to_vector<float>()[0])); });
  opt.register_zero_grad_post_hook([&](optim::Optimizer&, bool none) { log.push_back(none ? "zero none" : "zero keep"); });
  opt.step();
  opt.zero_grad(false);
  opt.zero_grad(true);
  EXPECT_EQ(log, (std::vector<std::string>{"pre1 1.000000", "pre2", "post 0.500000", "zero keep", "zero none"}));
}

TEST(OptimizerHooks, AThrowingPreHookStopsTheStepWithNothingChanged) {
  Tensor p = leaf({1, 2}, {1, 1});
  optim::Adam opt({optim::ParamGroup{.params = {p}}}, {.lr = 0.1});
  bool post_ran = false;
  const uint64_t h = opt.register_step_pre_hook([](optim::Optimizer&, bool) { throw Error(ErrorCode::InvalidArgument, "no"); });
  opt.register_step_post_hook([&](optim::Optimizer&, bool) { post_ran = true; });
  EXPECT_THROW(opt.step(), Error);
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_FALSE(post_ran);
  EXPECT_TRUE(opt.remove_hook(h));
  EXPECT_FALSE(opt.remove_hook(h));
  opt.step();
  EXPECT_TRUE(post_ran);
  // The failed step left no trace: the next one is a first step (Adam's bias correction at t = 1).
  Tensor fresh = leaf({1, 2}, {1, 1});
  optim::Adam twin({optim::ParamGroup{.params = {fresh}}}, {.lr = 0.1});
  twin.step();
  EXPECT_EQ(p.to_vector<float>(), fresh.to_vector<float>());
  EXPECT_NE(p.to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(OptimizerHooks, EmptyHookAndBadWholeTensorsAreErrors) {
  Tensor p = leaf({1, 2}, {1, 1}), q = leaf({3}, {1});
  optim::LAMB opt({optim::ParamGroup{.params = {p, q}}}, {});
  expect_error([&] { opt.register_step_pre_hook({}); }, ErrorCode::InvalidArgument, {"empty"});
  expect_error([&] { opt.set_whole_tensors({.index = {0}, .count = 1}); }, ErrorCode::InvalidArgument,
               {"1 entries for 2 parameters"});
  expect_error([&] { opt.set_whole_tensors({.index = {0, 2}, .count = 2}); }, ErrorCode::InvalidArgument,
               {"parameter 1", "whole tensor 2", "outside [0, 2)"});
  EXPECT_EQ(opt.whole_tensors(), nullptr);
}

// LAMB's trust ratio ‖w‖/‖update‖ is per whole tensor: two pieces declared one whole tensor must
// take the whole tensor's ratio, not each its own (which differs here: the pieces differ in scale).
TEST(OptimizerHooks, LambOverPiecesOfOneTensorEqualsLambOverTheTensor) {
  const std::vector<float> w = {0.5f, -1.0f, 2.0f, 4.0f, -3.0f}, g = {0.1f, 0.2f, -0.3f, 1.0f, 0.05f};
  Tensor whole = leaf(w, g);
  Tensor a = leaf({w[0], w[1]}, {g[0], g[1]}), b = leaf({w[2], w[3], w[4]}, {g[2], g[3], g[4]});
  const optim::LAMBOptions o{.lr = 0.1, .weight_decay = 0.01};
  optim::LAMB ref({optim::ParamGroup{.params = {whole}}}, o), pieces({optim::ParamGroup{.params = {a, b}}}, o);
  int reductions = 0;
  pieces.set_whole_tensors({.index = {0, 0}, .count = 1, .all_reduce_sum = [&](Tensor&) { ++reductions; }});
  for (int step = 0; step < 3; ++step) {
    ref.step();
    pieces.step();
  }
  EXPECT_EQ(reductions, 3) << "one reduction of the partial norms per step";
  std::vector<float> got = a.to_vector<float>(), tail = b.to_vector<float>();
  got.insert(got.end(), tail.begin(), tail.end());
  const std::vector<float> want = whole.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  // Without the declaration the pieces take their own ratios, and the result differs.
  Tensor a2 = leaf({w[0], w[1]}, {g[0], g[1]}), b2 = leaf({w[2], w[3], w[4]}, {g[2], g[3], g[4]});
  optim::LAMB own({optim::ParamGroup{.params = {a2, b2}}}, o);
  for (int step = 0; step < 3; ++step) own.step();
  EXPECT_GT(std::fabs(a2.to_vector<float>()[0] - want[0]), 1e-4);
}
