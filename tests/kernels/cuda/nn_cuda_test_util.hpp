// Test support for the CUDA NN kernel tests: random CPU inputs, and a check that runs a public op
// with autograd on the CPU and on the GPU and compares the outputs and every input gradient.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"

namespace kirzl::testing {

// The device under test (the CPU in a dry run, see tests/support/cuda_compare.hpp).
inline Device gpu() { return test_gpu(); }
inline constexpr bool kNnDryRun = kGpuDryRun;

/// Uniform values in [lo, hi) of dtype `dt` on the CPU, from a fixed-seed generator.
inline Tensor cpu_uniform(const Shape& s, DType dt, double lo = -3, double hi = 3, uint64_t seed = 1) {
  Generator gen(seed);
  return uniform(s, lo, hi, {.dtype = DType::f64}, &gen).to(dt);
}

/// Same dtype, shape and bytes (NaNs compared by bits).
inline ::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()).contiguous(), y = b.to(Device::cpu()).contiguous();
  if (x.dtype() != y.dtype() || x.shape() != y.shape())
    return ::testing::AssertionFailure() << x.describe() << " vs " << y.describe();
  if (std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) != 0)
    return ::testing::AssertionFailure() << "bytes differ between " << x.describe() << " and " << y.describe();
  return ::testing::AssertionSuccess();
}

/// Runs `f` on CPU leaves made from `inputs` (CPU tensors; floating ones require grad) and on
/// GPU leaves with the same values (non-contiguous views when `non_contiguous`), backpropagates
/// the same random gradient, and expects the GPU output and gradients to match the CPU's.
/// `f(xs, device)` builds any further tensors (indices, targets) on `device`.
inline void expect_op_matches_cpu(const std::function<Tensor(const std::vector<Tensor>&, Device)>& f,
                                  const std::vector<Tensor>& inputs, Tolerance tol, bool non_contiguous) {
  std::vector<Tensor> xc, xg;
  for (const Tensor& t : inputs) {
    // detach(): fresh leaves that never share autograd state with `t` (to() may return t itself).
    Tensor c = t.detach().clone();
    Tensor g = non_contiguous ? non_contiguous_copy(t.to(gpu())).detach() : t.to(gpu()).detach();
    if (non_contiguous) {
      EXPECT_FALSE(g.is_contiguous());
    }
    if (is_floating(t.dtype())) {
      c.requires_grad_();
      g.requires_grad_();
    }
    xc.push_back(c);
    xg.push_back(g);
  }
  Tensor yc = f(xc, Device::cpu());
  Tensor yg = f(xg, gpu());
  ASSERT_EQ(yg.device(), gpu()) << yg.describe();
  EXPECT_TRUE(all_close(yg, yc, tol)) << "forward";
  Tensor gout = cpu_uniform(yc.shape(), yc.dtype(), -1, 1, 7);
  yc.backward(gout);
  yg.backward(gout.to(gpu()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!is_floating(inputs[i].dtype())) continue;
    ASSERT_TRUE(xg[i].grad().defined()) << "input " << i << " has no gradient on the GPU";
    EXPECT_EQ(xg[i].grad().device(), gpu());
    EXPECT_TRUE(all_close(xg[i].grad(), xc[i].grad(), tol)) << "gradient of input " << i;
  }
}

}  // namespace kirzl::testing
