// Test support for optimizer tests: a small separable quadratic problem over three parameter
// tensors, its gradient as plain double loops, and helpers to drive an Optimizer through it.
//
//   loss(θ) = Σ_k Σ_i ½ a_k[i] (θ_k[i] - c_k[i])²   so   ∂loss/∂θ_k[i] = a_k[i] (θ_k[i] - c_k[i])
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include <kirzl/optim.hpp>
#include <kirzl/tensor.hpp>

namespace kirzl::optim::testing {

/// Values of several tensors, flattened: values[k][i].
using Values = std::vector<std::vector<double>>;

struct Quadratic {
  std::vector<Shape> shapes{{2, 3}, {3}, {1}};
  Values init{{0.5, -1.0, 2.0, 0.25, -0.75, 1.5}, {1.0, -2.0, 0.3}, {-0.8}};
  Values a{{1.0, 2.0, 0.5, 3.0, 1.5, 0.8}, {0.7, 1.2, 2.5}, {4.0}};
  Values c{{0.1, 0.2, -0.3, 0.4, -0.5, 0.6}, {-1.0, 0.5, 0.0}, {0.9}};

  Values grad(const Values& theta) const {
    Values g = theta;
    for (size_t k = 0; k < g.size(); ++k)
      for (size_t i = 0; i < g[k].size(); ++i) g[k][i] = a[k][i] * (theta[k][i] - c[k][i]);
    return g;
  }
};

/// Fresh leaf tensors holding the problem's initial values.
inline std::vector<Tensor> make_params(const Quadratic& q, DType dtype = DType::f64) {
  std::vector<Tensor> ps;
  for (size_t k = 0; k < q.init.size(); ++k)
    ps.push_back(from_vector(q.init[k], q.shapes[k], {.dtype = dtype}).requires_grad_());
  return ps;
}

inline Values values_of(const std::vector<Tensor>& ps) {
  Values v;
  for (const Tensor& p : ps) v.push_back(p.to_vector<double>());
  return v;
}

/// Sets each parameter's gradient from its current values (the gradient has the param's dtype).
inline void set_grads(const Quadratic& q, const std::vector<Tensor>& ps) {
  Values g = q.grad(values_of(ps));
  for (size_t k = 0; k < ps.size(); ++k) {
    Tensor p = ps[k];
    p.set_grad(from_vector(g[k], p.shape(), {.dtype = p.dtype()}));
  }
}

inline void expect_values_near(const Values& got, const Values& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].size(), want[k].size()) << what;
    for (size_t i = 0; i < got[k].size(); ++i)
      EXPECT_NEAR(got[k][i], want[k][i], tol) << what << ": tensor " << k << " element " << i;
  }
}

/// One reference step: updates theta in place given its gradient; `t` is the step (from 1).
using ReferenceStep = std::function<void(Values& theta, const Values& grad, int t)>;

/// Runs `opt` over `ps` and `ref` over plain doubles for `steps` steps of the problem, comparing
/// after every step.
inline void expect_same_trajectory(const Quadratic& q, Optimizer& opt, const std::vector<Tensor>& ps,
                                   const ReferenceStep& ref, int steps, double tol) {
  Values theta = q.init;
  for (int t = 1; t <= steps; ++t) {
    set_grads(q, ps);
    opt.step();
    ref(theta, q.grad(theta), t);
    expect_values_near(values_of(ps), theta, tol, "step " + std::to_string(t));
  }
}

}  // namespace kirzl::optim::testing
