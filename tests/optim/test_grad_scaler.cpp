// amp::GradScaler on the CPU: unscaling, skipping steps after an overflow, backoff and growth,
// ranks that skip alike (in-process group), state dicts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"

namespace kirzl {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// loss = Σ w · x: the gradient of w is x (times the scale before unscaling).
Tensor linear_loss(const Tensor& w, const std::vector<double>& x) {
  return sum(mul(w, from_vector(x, {static_cast<int64_t>(x.size())})));
}

TEST(GradScaler, ScalesTheLossAndUnscalesTheGradients) {
  Tensor w = from_vector(std::vector<double>{1.0, 2.0, 3.0}, {3}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.5});
  amp::GradScaler scaler({.init_scale = 1024.0});
  Tensor scaled = scaler.scale(linear_loss(w, {0.5, -1.0, 0.25}));
  EXPECT_DOUBLE_EQ(scaled.item(), 1024.0 * (0.5 - 2.0 + 0.75));
  scaled.backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{512.0, -1024.0, 256.0}));
  EXPECT_TRUE(scaler.step(opt));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{0.5, -1.0, 0.25}));
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{0.75, 2.5, 2.875}));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1024.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(GradScaler, ABFloat16LossIsScaledInFloat32) {
  amp::GradScaler scaler;
  Tensor loss = scalar_tensor(2.0, {.dtype = DType::f16});
  Tensor scaled = scaler.scale(loss);
  EXPECT_EQ(scaled.dtype(), DType::f32);
  EXPECT_EQ(scaled.item(), 131072.0);  // beyond f16's range
}

TEST(GradScaler, OverflowSkipsTheStepAndBacksOffThenGrowsAgain) {
  Tensor w = from_vector(std::vector<double>{1.0, 2.0}, {2}).requires_grad_();
  optim::AdamW opt({w}, {.lr = 0.1});
  amp::GradScaler scaler({.init_scale = 256.0, .growth_interval = 3});
  auto iteration = [&](bool inject_inf) {
    opt.zero_grad();
    scaler.scale(linear_loss(w, {1.0, -1.0})).backward();
    if (inject_inf) {
      Tensor g = w.grad();
      g.copy_(from_vector(std::vector<double>{kInf, 3.0}, {2}));
    }
    bool stepped = scaler.step(opt);
    scaler.update();
    return stepped;
  };
  ASSERT_TRUE(iteration(false));
  const std::vector<double> before = w.to_vector<double>();
  EXPECT_EQ(opt.step_count(0), 1);
  EXPECT_FALSE(iteration(true));
  EXPECT_TRUE(scaler.last_step_skipped(opt));
  EXPECT_EQ(w.to_vector<double>(), before) << "a skipped step must not touch the parameters";
  EXPECT_EQ(opt.step_count(0), 1) << "nor the optimizer's state";
  EXPECT_EQ(scaler.get_scale(), 128.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // growth_interval clean steps: the scale doubles once, on the third.
  EXPECT_TRUE(iteration(false));
  EXPECT_FALSE(scaler.last_step_skipped(opt));
  EXPECT_TRUE(iteration(false));
  EXPECT_EQ(scaler.get_scale(), 128.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  EXPECT_TRUE(iteration(false));
  EXPECT_EQ(scaler.get_scale(), 256.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  EXPECT_EQ(opt.step_count(0), 4);
  // NaN counts as an overflow too.
  opt.zero_grad();
  scaler.scale(linear_loss(w, {1.0, -1.0})).backward();
  w.grad().fill_(std::nan(""));
  EXPECT_FALSE(scaler.step(opt));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 128.0);
}

TEST(GradScaler, UnscaleBeforeClippingThenStep) {
  Tensor w = zeros({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 1.0});
  amp::GradScaler scaler({.init_scale = 8.0});
  scaler.scale(linear_loss(w, {3.0, 4.0})).backward();
  scaler.unscale_(opt);
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{3.0, 4.0}));
  EXPECT_NEAR(optim::clip_grad_norm_({w}, 1.0).item(), 5.0, 1e-6);
  EXPECT_KIRZL_ERROR(scaler.unscale_(opt), ErrorCode::InvalidArgument, "unscale_", "already");
  EXPECT_TRUE(scaler.step(opt));  // does not unscale a second time
  auto v = w.to_vector<double>();
  EXPECT_NEAR(v[0], -0.6, 1e-6);
  EXPECT_NEAR(v[1], -0.8, 1e-6);
  EXPECT_KIRZL_ERROR(scaler.step(opt), ErrorCode::InvalidArgument, "step", "already");
  scaler.update();
  EXPECT_KIRZL_ERROR(scaler.update(), ErrorCode::InvalidArgument, "update", "no step()");
}

TEST(GradScaler, DisabledPassesThrough) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 1.0});
  amp::GradScaler scaler({.enabled = false});
  Tensor loss = linear_loss(w, {1.0, 2.0});
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  loss.backward();
  EXPECT_TRUE(scaler.step(opt));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1.0);
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{0.0, -1.0}));
}

TEST(GradScaler, BadOptionsNameTheOption) {
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(amp::GradScaler({.init_scale = 0.0}), E::InvalidArgument, "init_scale");
  EXPECT_KIRZL_ERROR(amp::GradScaler({.growth_factor = 1.0}), E::InvalidArgument, "growth_factor");
  EXPECT_KIRZL_ERROR(amp::GradScaler({.backoff_factor = 1.0}), E::InvalidArgument, "backoff_factor");
  EXPECT_KIRZL_ERROR(amp::GradScaler({.growth_interval = 0}), E::InvalidArgument, "growth_interval");
}

TEST(GradScaler, StateDictRoundTrip) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.1});
  amp::GradScaler a({.init_scale = 64.0, .growth_factor = 4.0, .backoff_factor = 0.25, .growth_interval = 5});
  for (int s = 0; s < 3; ++s) {
    opt.zero_grad();
    a.scale(linear_loss(w, {1.0, 1.0})).backward();
    if (s == 0) w.grad().fill_(kInf);
    a.step(opt);
    a.update();
  }
  EXPECT_EQ(a.get_scale(), 16.0);
  EXPECT_EQ(a.growth_tracker(), 2);
  StateDict sd = a.state_dict();
  amp::GradScaler b;
  b.load_state_dict(sd);
  EXPECT_EQ(b.get_scale(), 16.0);
  EXPECT_EQ(b.growth_tracker(), 2);
  EXPECT_EQ(b.state_dict().at("growth_factor").item(), 4.0);
  EXPECT_EQ(b.state_dict().at("backoff_factor").item(), 0.25);
  EXPECT_EQ(b.state_dict().at("growth_interval").item(), 5.0);
  // Bad entries are rejected and leave the scaler as it was.
  StateDict bad = sd;
  bad.insert("scale", scalar_tensor(-1.0, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(b.load_state_dict(bad), ErrorCode::InvalidArgument, "scale");
  StateDict extra = sd;
  extra.insert("bogus", scalar_tensor(1.0, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(b.load_state_dict(extra), ErrorCode::InvalidArgument, "bogus");
  EXPECT_EQ(b.get_scale(), 16.0);
}

TEST(GradScaler, RanksSkipAlikeWhenOnlyOneOverflows) {
  const int kSteps = 6, kInfStep = 2;
  std::vector<std::vector<double>> final_w(2), scales(2);
  std::vector<std::vector<bool>> stepped(2);
  testing::run_rank_threads(2, [&](int rank, comm::Communicator& c) {
    Tensor w = from_vector(std::vector<double>{0.5, -0.25, 1.0}, {3}).requires_grad_();
    optim::Adam opt({w}, {.lr = 0.05});
    amp::GradScaler scaler({.init_scale = 1024.0, .growth_interval = 2}, &c);
    for (int s = 0; s < kSteps; ++s) {
      opt.zero_grad();
      // Both ranks see the same data (so they stay identical); only rank 1 overflows once.
      scaler.scale(linear_loss(w, {1.0 + s, -2.0, 0.5})).backward();
      if (rank == 1 && s == kInfStep) w.grad().fill_(kInf);
      stepped[rank].push_back(scaler.step(opt));
      scaler.update();
      scales[rank].push_back(scaler.get_scale());
    }
    final_w[rank] = w.to_vector<double>();
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(stepped[r].size(), static_cast<size_t>(kSteps));
    for (int s = 0; s < kSteps; ++s) EXPECT_EQ(stepped[r][s], s != kInfStep) << "rank " << r << " step " << s;
  }
  EXPECT_EQ(scales[0], scales[1]);
  EXPECT_EQ(scales[0][kInfStep], scales[0][kInfStep - 1] / 2);
  EXPECT_EQ(final_w[0], final_w[1]);
}

}  // namespace
}  // namespace kirzl
