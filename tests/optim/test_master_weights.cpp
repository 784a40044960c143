// Master weights of 16-bit parameters (Note [master weights]): updates below the parameter's
// precision accumulate, a bf16 MLP tracks its f32 twin, and checkpoints carry the masters.
#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

namespace kirzl {
namespace {

namespace nn = kirzl::nn;

TEST(MasterWeights, SmallUpdatesAccumulateInTheMaster) {
  // bf16 has 8 mantissa bits: at 1.0 its spacing is 2^-7, so a step of 1e-3 alone rounds away.
  Tensor p = full({5}, 1.0, {.dtype = DType::bf16}).requires_grad_();
  optim::SGD opt({p}, {.lr = 1e-3});
  for (int s = 0; s < 20; ++s) {
    p.set_grad(ones({5}, {.dtype = DType::bf16}));
    opt.step();
  }
  StateDict sd = opt.state_dict();
  const Tensor& master = sd.at("state.0.master");
  EXPECT_EQ(master.dtype(), DType::f32);
  for (double m : master.to_vector<double>()) EXPECT_NEAR(m, 0.98, 1e-5);
  // The parameter is the master rounded to bf16 (spacing 2^-8 below 1): 0.98046875.
  for (double v : p.to_vector<double>()) EXPECT_EQ(v, 0.98046875);
}

TEST(MasterWeights, Float32ParametersHaveNoMaster) {
  Tensor p = full({3}, 0.5).requires_grad_();
  optim::AdamW opt({p});
  p.set_grad(ones({3}));
  opt.step();
  EXPECT_EQ(opt.state_dict().find("state.0.master"), nullptr);
}

std::shared_ptr<nn::Sequential> make_mlp(DType dtype) {
  manual_seed(7);
  auto m = std::make_shared<nn::Sequential>(nn::Linear(16, 64), nn::GELU(), nn::Linear(64, 32), nn::ReLU(),
                                            nn::Linear(32, 5));
  m->to(dtype);
  return m;
}

/// Losses of `steps` AdamW steps of the MLP in `dtype` on a fixed batch.
std::vector<double> train(DType dtype, int steps) {
  auto model = make_mlp(dtype);
  Generator gen(11);
  Tensor x = randn({128, 16}, {}, &gen).to(dtype);
  Tensor y = randint(0, 5, {128}, {.dtype = DType::i64}, &gen);
  optim::AdamW opt(model->parameters(), {.lr = 3e-3, .weight_decay = 0.01});
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor loss = cross_entropy(model->forward(x), y);
    losses.push_back(loss.item());
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return losses;
}

TEST(MasterWeights, BFloat16MlpTracksFloat32) {
  const int kSteps = 50;
  std::vector<double> f32 = train(DType::f32, kSteps);
  std::vector<double> bf16 = train(DType::bf16, kSteps);
  ASSERT_LT(f32.back(), 0.7 * f32.front()) << "the f32 run must learn for the comparison to mean anything";
  for (int s = 0; s < kSteps; ++s)
    EXPECT_NEAR(bf16[s], f32[s], 0.03 + 0.03 * f32[s]) << "step " << s;
  EXPECT_LT(bf16.back(), 0.7 * bf16.front());
}

TEST(MasterWeights, CheckpointRestoresTheMastersExactly) {
  auto a = make_mlp(DType::bf16);
  Generator gen(3);
  Tensor x = randn({32, 16}, {}, &gen).to(DType::bf16);
  Tensor y = randint(0, 5, {32}, {.dtype = DType::i64}, &gen);
  optim::Adam opt_a(a->parameters(), {.lr = 1e-3});
  auto run = [&](nn::Module& m, optim::Optimizer& opt, int n) {
    for (int s = 0; s < n; ++s) {
      Tensor loss = cross_entropy(m.forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  };
  run(*a, opt_a, 5);
  StateDict model_sd = a->state_dict(), opt_sd = opt_a.state_dict();
  for (int64_t i = 0; i < opt_a.num_params(); ++i) {
    const Tensor* m = opt_sd.find("state." + std::to_string(i) + ".master");
    ASSERT_NE(m, nullptr) << "parameter " << i;
    EXPECT_EQ(m->dtype(), DType::f32);
  }
  // A fresh model and optimizer restored from the checkpoint continue exactly as the original.
  auto b = make_mlp(DType::bf16);
  b->load_state_dict(model_sd);
  optim::Adam opt_b(b->parameters(), {.lr = 1e-3});
  opt_b.load_state_dict(opt_sd);
  run(*a, opt_a, 4);
  run(*b, opt_b, 4);
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t k = 0; k < pa.size(); ++k)
    EXPECT_EQ(pa[k].to_vector<double>(), pb[k].to_vector<double>()) << "parameter " << k;
  StateDict sa = opt_a.state_dict(), sb = opt_b.state_dict();
  EXPECT_EQ(sa.at("state.0.master").to_vector<double>(), sb.at("state.0.master").to_vector<double>());
}

TEST(MasterWeights, MasterOfAFloat32ParameterIsRejectedOnLoad) {
  Tensor p = full({3}, 0.5).requires_grad_();
  optim::SGD opt({p});
  p.set_grad(ones({3}));
  opt.step();
  StateDict sd = opt.state_dict();
  sd.insert("state.0.master", zeros({3}));
  EXPECT_KIRZL_ERROR(opt.load_state_dict(sd), ErrorCode::InvalidArgument, "state.0.master");
}

}  // namespace
}  // namespace kirzl
