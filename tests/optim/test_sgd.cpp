// SGD against an independent double-precision implementation of PyTorch's documented rule.
#include <gtest/gtest.h>

#include <kirzl/autograd.hpp>
#include <kirzl/ops.hpp>
#include <kirzl/optim/sgd.hpp>

#include "optim/quadratic.hpp"
#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

using testing::Quadratic;
using testing::Values;

/// Plain loops of torch.optim.SGD's algorithm; lr and weight decay per tensor.
struct SGDReference {
  std::vector<double> lr = {}, wd = {};
  double momentum = 0, dampening = 0;
  bool nesterov = false, maximize = false;
  Values buf = {};

  void operator()(Values& theta, const Values& grad, int t) {
    if (t == 1) buf = theta;
    for (size_t k = 0; k < theta.size(); ++k)
      for (size_t i = 0; i < theta[k].size(); ++i) {
        double g = maximize ? -grad[k][i] : grad[k][i];
        if (wd[k] != 0) g += wd[k] * theta[k][i];
        if (momentum != 0) {
          buf[k][i] = t == 1 ? g : momentum * buf[k][i] + (1 - dampening) * g;
          g = nesterov ? g + momentum * buf[k][i] : buf[k][i];
        }
        theta[k][i] -= lr[k] * g;
      }
  }
};

constexpr int kSteps = 6;
constexpr double kTol = 1e-12;

TEST(SGD, PlainMatchesReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(ps, {.lr = 0.1});
  testing::expect_same_trajectory(q, opt, ps, SGDReference{{0.1, 0.1, 0.1}, {0, 0, 0}}, kSteps, kTol);
}

TEST(SGD, MomentumDampeningWeightDecayMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(ps, {.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  SGDReference ref{{0.05, 0.05, 0.05}, {0.01, 0.01, 0.01}, 0.9, 0.1};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(SGD, NesterovMatchesReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(ps, {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.05, .nesterov = true});
  SGDReference ref{{0.05, 0.05, 0.05}, {0.05, 0.05, 0.05}, 0.8, 0.0, true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(SGD, MaximizeMatchesReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(ps, {.lr = 0.01, .momentum = 0.5, .weight_decay = 0.1, .maximize = true});
  SGDReference ref{{0.01, 0.01, 0.01}, {0.1, 0.1, 0.1}, 0.5, 0.0, false, true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(SGD, TwoParamGroupsWithDifferentLrAndWeightDecay) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(std::vector<ParamGroup>{{.params = {ps[0], ps[1]}}, {.params = {ps[2]}, .lr = 0.02, .weight_decay = 0.3}},
          {.lr = 0.1, .momentum = 0.9});
  EXPECT_EQ(opt.num_groups(), 2);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.02);
  EXPECT_DOUBLE_EQ(opt.weight_decay(0), 0.0);
  EXPECT_DOUBLE_EQ(opt.weight_decay(1), 0.3);
  SGDReference ref{{0.1, 0.1, 0.02}, {0, 0, 0.3}, 0.9};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(SGD, Float32FollowsDoubleReference) {
  Quadratic q;
  auto ps = testing::make_params(q, DType::f32);
  SGD opt(ps, {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  SGDReference ref{{0.05, 0.05, 0.05}, {0.01, 0.01, 0.01}, 0.9, 0.0, true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, 1e-5);
  EXPECT_EQ(ps[0].dtype(), DType::f32);
}

TEST(SGD, GradientsFromAutograd) {
  // loss = Σ w² · 0.5 ⇒ grad = w; plain SGD gives w ← w (1 - lr).
  Tensor w = from_vector<double>({1.0, -2.0, 3.0}).requires_grad_();
  SGD opt({w}, {.lr = 0.25});
  std::vector<double> ref{1.0, -2.0, 3.0};
  for (int t = 0; t < 5; ++t) {
    opt.zero_grad();
    Tensor loss = kirzl::sum(kirzl::mul(w, w)) * 0.5;
    loss.backward();
    opt.step();
    for (double& r : ref) r *= 0.75;
    auto got = w.to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-14);
  }
}

TEST(SGD, BadOptionsNameTheOption) {
  Quadratic q;
  auto ps = testing::make_params(q);
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(SGD(ps, {.lr = -1.0}), E::InvalidArgument, "SGD", "lr", "-1");
  EXPECT_KIRZL_ERROR(SGD(ps, {.momentum = -0.5}), E::InvalidArgument, "SGD", "momentum", "-0.5");
  EXPECT_KIRZL_ERROR(SGD(ps, {.weight_decay = -0.1}), E::InvalidArgument, "SGD", "weight_decay", "-0.1");
  EXPECT_KIRZL_ERROR(SGD(ps, {.nesterov = true}), E::InvalidArgument, "SGD", "nesterov", "momentum");
  EXPECT_KIRZL_ERROR(SGD(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), E::InvalidArgument, "nesterov",
                     "dampening");
  EXPECT_KIRZL_ERROR(SGD(std::vector<ParamGroup>{{.params = ps, .lr = -0.5}}), E::InvalidArgument, "lr", "group 0",
                     "-0.5");
  EXPECT_KIRZL_ERROR(SGD(std::vector<Tensor>{}), E::InvalidArgument, "SGD", "empty");
}

}  // namespace
}  // namespace kirzl::optim
