// Adam and AdamW against an independent double-precision implementation of PyTorch's rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <kirzl/optim/adam.hpp>

#include "optim/quadratic.hpp"
#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

using testing::Quadratic;
using testing::Values;

/// Plain loops of torch.optim.Adam / AdamW; lr and weight decay per tensor.
struct AdamReference {
  std::vector<double> lr = {}, wd = {};
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false, maximize = false, decoupled = false;
  Values m = {}, v = {}, vmax = {};

  void operator()(Values& theta, const Values& grad, int t) {
    if (t == 1) {
      m = v = vmax = theta;
      for (auto* s : {&m, &v, &vmax})
        for (auto& x : *s) std::fill(x.begin(), x.end(), 0.0);
    }
    double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t k = 0; k < theta.size(); ++k)
      for (size_t i = 0; i < theta[k].size(); ++i) {
        double g = maximize ? -grad[k][i] : grad[k][i];
        double& w = theta[k][i];
        if (decoupled) w *= 1 - lr[k] * wd[k];
        else g += wd[k] * w;
        m[k][i] = beta1 * m[k][i] + (1 - beta1) * g;
        v[k][i] = beta2 * v[k][i] + (1 - beta2) * g * g;
        double vv = v[k][i];
        if (amsgrad) vv = vmax[k][i] = std::max(vmax[k][i], v[k][i]);
        double m_hat = m[k][i] / bc1, v_hat = vv / bc2;
        w -= lr[k] * m_hat / (std::sqrt(v_hat) + eps);
      }
  }
};

constexpr int kSteps = 8;
constexpr double kTol = 1e-12;

TEST(Adam, DefaultsMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.1});
  EXPECT_DOUBLE_EQ(opt.options().betas.first, 0.9);
  EXPECT_DOUBLE_EQ(opt.options().betas.second, 0.999);
  EXPECT_DOUBLE_EQ(opt.options().eps, 1e-8);
  EXPECT_DOUBLE_EQ(opt.weight_decay(), 0.0);
  testing::expect_same_trajectory(q, opt, ps, AdamReference{.lr = {0.1, 0.1, 0.1}, .wd = {0, 0, 0}}, kSteps, kTol);
}

TEST(Adam, CoupledWeightDecayAndBetasMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.05, .betas = {0.8, 0.95}, .eps = 1e-3, .weight_decay = 0.1});
  AdamReference ref{.lr = {0.05, 0.05, 0.05}, .wd = {0.1, 0.1, 0.1}, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(Adam, AmsgradMatchesReference) {
  // A small beta2 makes v shrink as the gradients do, so the running max matters.
  Quadratic q;
  AdamReference plain{.lr = {0.2, 0.2, 0.2}, .wd = {0, 0, 0}, .beta2 = 0.5};
  AdamReference ams = plain;
  ams.amsgrad = true;
  Values a = q.init, b = q.init;
  for (int t = 1; t <= kSteps; ++t) {
    plain(a, q.grad(a), t);
    ams(b, q.grad(b), t);
  }
  EXPECT_NE(a, b) << "the test problem does not exercise amsgrad";

  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.2, .betas = {0.9, 0.5}, .amsgrad = true});
  AdamReference ref{.lr = {0.2, 0.2, 0.2}, .wd = {0, 0, 0}, .beta2 = 0.5, .amsgrad = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(Adam, MaximizeMatchesReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.01, .weight_decay = 0.2, .maximize = true});
  AdamReference ref{.lr = {0.01, 0.01, 0.01}, .wd = {0.2, 0.2, 0.2}, .maximize = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(AdamW, DefaultDecoupledWeightDecayMatchesReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  AdamW opt(ps, {.lr = 0.1});
  EXPECT_DOUBLE_EQ(opt.weight_decay(), 0.01);
  AdamReference ref{.lr = {0.1, 0.1, 0.1}, .wd = {0.01, 0.01, 0.01}, .decoupled = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(AdamW, AmsgradAndStrongDecayMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  AdamW opt(ps, {.lr = 0.1, .betas = {0.7, 0.6}, .weight_decay = 0.5, .amsgrad = true});
  AdamReference ref{.lr = {0.1, 0.1, 0.1}, .wd = {0.5, 0.5, 0.5}, .beta1 = 0.7, .beta2 = 0.6, .amsgrad = true,
                    .decoupled = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(AdamW, TwoParamGroupsWithDifferentLr) {
  Quadratic q;
  auto ps = testing::make_params(q);
  AdamW opt(std::vector<ParamGroup>{{.params = {ps[0]}, .lr = 0.03}, {.params = {ps[1], ps[2]}, .weight_decay = 0.0}},
            {.lr = 0.1, .weight_decay = 0.2});
  AdamReference ref{.lr = {0.03, 0.1, 0.1}, .wd = {0.2, 0.0, 0.0}, .decoupled = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(Adam, TwoParamGroupsWithDifferentLr) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(std::vector<ParamGroup>{{.params = {ps[0], ps[2]}}, {.params = {ps[1]}, .lr = 0.01, .weight_decay = 0.1}},
           {.lr = 0.1});
  AdamReference ref{.lr = {0.1, 0.01, 0.1}, .wd = {0, 0.1, 0}};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(AdamW, Float32FollowsDoubleReference) {
  Quadratic q;
  auto ps = testing::make_params(q, DType::f32);
  AdamW opt(ps, {.lr = 0.05, .weight_decay = 0.1, .amsgrad = true});
  AdamReference ref{.lr = {0.05, 0.05, 0.05}, .wd = {0.1, 0.1, 0.1}, .amsgrad = true, .decoupled = true};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, 1e-5);
}

TEST(Adam, BFloat16ParamsKeepFloat32State) {
  Quadratic q;
  auto ps = testing::make_params(q, DType::bf16);
  Adam opt(ps, {.lr = 0.05});
  AdamReference ref{.lr = {0.05, 0.05, 0.05}, .wd = {0, 0, 0}};
  testing::expect_same_trajectory(q, opt, ps, ref, 3, 0.05);
  StateDict sd = opt.state_dict();
  EXPECT_EQ(sd.at("state.0.exp_avg").dtype(), DType::f32);
  EXPECT_EQ(ps[0].dtype(), DType::bf16);
}

TEST(Adam, BadOptionsNameTheOption) {
  Quadratic q;
  auto ps = testing::make_params(q);
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(Adam(ps, {.lr = -0.001}), E::InvalidArgument, "Adam", "lr", "-0.001");
  EXPECT_KIRZL_ERROR(Adam(ps, {.betas = {1.0, 0.999}}), E::InvalidArgument, "Adam", "betas", "1");
  EXPECT_KIRZL_ERROR(Adam(ps, {.betas = {0.9, -0.1}}), E::InvalidArgument, "Adam", "betas", "-0.1");
  EXPECT_KIRZL_ERROR(Adam(ps, {.eps = 0.0}), E::InvalidArgument, "Adam", "eps", "0");
  EXPECT_KIRZL_ERROR(Adam(ps, {.weight_decay = -1.0}), E::InvalidArgument, "Adam", "weight_decay", "-1");
  EXPECT_KIRZL_ERROR(AdamW(ps, {.betas = {0.9, 1.5}}), E::InvalidArgument, "AdamW", "betas", "1.5");
  EXPECT_KIRZL_ERROR(AdamW(ps, {.eps = -1e-8}), E::InvalidArgument, "AdamW", "eps");
  EXPECT_KIRZL_ERROR(AdamW(std::vector<ParamGroup>{{.params = ps, .weight_decay = -0.5}}), E::InvalidArgument, "AdamW",
                     "weight_decay", "-0.5");
}

}  // namespace
}  // namespace kirzl::optim
