// LAMB against an independent double-precision implementation of You et al. (2019).
#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/optim/lamb.hpp>

#include "optim/quadratic.hpp"
#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

using testing::Quadratic;
using testing::Values;

/// Plain loops of LAMB: Adam direction with bias correction plus decoupled weight decay, scaled
/// per tensor by the trust ratio ||θ|| / ||r||.
struct LAMBReference {
  std::vector<double> lr = {}, wd = {};
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
  Values m = {}, v = {};
  std::vector<double> last_trust = {};

  void operator()(Values& theta, const Values& grad, int t) {
    if (t == 1) {
      m = v = theta;
      for (auto* s : {&m, &v})
        for (auto& x : *s) std::fill(x.begin(), x.end(), 0.0);
    }
    last_trust.assign(theta.size(), 0.0);
    double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t k = 0; k < theta.size(); ++k) {
      std::vector<double> r(theta[k].size());
      double wn = 0, rn = 0;
      for (size_t i = 0; i < theta[k].size(); ++i) {
        double g = grad[k][i];
        m[k][i] = beta1 * m[k][i] + (1 - beta1) * g;
        v[k][i] = beta2 * v[k][i] + (1 - beta2) * g * g;
        r[i] = (m[k][i] / bc1) / (std::sqrt(v[k][i] / bc2) + eps) + wd[k] * theta[k][i];
        wn += theta[k][i] * theta[k][i];
        rn += r[i] * r[i];
      }
      wn = std::sqrt(wn);
      rn = std::sqrt(rn);
      double trust = (wn > 0 && rn > 0) ? wn / rn : 1.0;
      last_trust[k] = trust;
      for (size_t i = 0; i < theta[k].size(); ++i) theta[k][i] -= lr[k] * trust * r[i];
    }
  }
};

constexpr int kSteps = 8;
constexpr double kTol = 1e-12;

TEST(LAMB, DefaultsMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  LAMB opt(ps, {.lr = 0.05});
  EXPECT_DOUBLE_EQ(opt.weight_decay(), 0.01);
  EXPECT_DOUBLE_EQ(opt.options().eps, 1e-6);
  LAMBReference ref{.lr = {0.05, 0.05, 0.05}, .wd = {0.01, 0.01, 0.01}};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(LAMB, BetasAndWeightDecayMatchReference) {
  Quadratic q;
  auto ps = testing::make_params(q);
  LAMB opt(ps, {.lr = 0.1, .betas = {0.8, 0.9}, .eps = 1e-4, .weight_decay = 0.3});
  LAMBReference ref{.lr = {0.1, 0.1, 0.1}, .wd = {0.3, 0.3, 0.3}, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-4};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(LAMB, ZeroWeightsUseTrustRatioOne) {
  Quadratic q;
  q.init[1] = {0.0, 0.0, 0.0};  // ||θ|| = 0 on the first step
  auto ps = testing::make_params(q);
  LAMB opt(ps, {.lr = 0.1, .weight_decay = 0.0});
  LAMBReference ref{.lr = {0.1, 0.1, 0.1}, .wd = {0, 0, 0}};
  Values theta = q.init;
  testing::set_grads(q, ps);
  opt.step();
  ref(theta, q.grad(theta), 1);
  EXPECT_EQ(ref.last_trust[1], 1.0);
  testing::expect_values_near(testing::values_of(ps), theta, kTol, "step 1");
  // Adam's first step moves each element by -lr · sign(g) (up to eps) when the trust ratio is 1;
  // g = a (0 - c) > 0 for element 0 (c = -1).
  EXPECT_NEAR(ps[1].to_vector<double>()[0], -0.1, 1e-5);
}

TEST(LAMB, TwoParamGroupsWithDifferentLr) {
  Quadratic q;
  auto ps = testing::make_params(q);
  LAMB opt(std::vector<ParamGroup>{{.params = {ps[0], ps[1]}, .lr = 0.02}, {.params = {ps[2]}, .weight_decay = 0.0}},
           {.lr = 0.1});
  LAMBReference ref{.lr = {0.02, 0.02, 0.1}, .wd = {0.01, 0.01, 0.0}};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, kTol);
}

TEST(LAMB, Float32FollowsDoubleReference) {
  Quadratic q;
  auto ps = testing::make_params(q, DType::f32);
  LAMB opt(ps, {.lr = 0.05, .weight_decay = 0.1});
  LAMBReference ref{.lr = {0.05, 0.05, 0.05}, .wd = {0.1, 0.1, 0.1}};
  testing::expect_same_trajectory(q, opt, ps, ref, kSteps, 1e-5);
}

TEST(LAMB, LargeTensorUsesThreadIndependentNorms) {
  // Large enough to be split across threads: the result must still equal the serial reference.
  const int64_t n = 100003;
  std::vector<double> init(n), grad(n);
  for (int64_t i = 0; i < n; ++i) {
    init[i] = std::sin(0.001 * static_cast<double>(i));
    grad[i] = std::cos(0.0007 * static_cast<double>(i)) - 0.2;
  }
  Tensor p = from_vector(init, {n}).requires_grad_();
  LAMB opt({p}, {.lr = 0.01});
  LAMBReference ref{.lr = {0.01}, .wd = {0.01}};
  Values theta{init};
  for (int t = 1; t <= 3; ++t) {
    p.set_grad(from_vector(grad, {n}));
    opt.step();
    ref(theta, Values{grad}, t);
  }
  testing::expect_values_near({p.to_vector<double>()}, theta, 1e-12, "large tensor");
}

TEST(LAMB, BadOptionsNameTheOption) {
  Quadratic q;
  auto ps = testing::make_params(q);
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(LAMB(ps, {.lr = -1.0}), E::InvalidArgument, "LAMB", "lr", "-1");
  EXPECT_KIRZL_ERROR(LAMB(ps, {.betas = {0.9, 1.0}}), E::InvalidArgument, "LAMB", "betas", "1");
  EXPECT_KIRZL_ERROR(LAMB(ps, {.eps = 0.0}), E::InvalidArgument, "LAMB", "eps", "0");
  EXPECT_KIRZL_ERROR(LAMB(ps, {.weight_decay = -0.01}), E::InvalidArgument, "LAMB", "weight_decay", "-0.01");
}

}  // namespace
}  // namespace kirzl::optim
