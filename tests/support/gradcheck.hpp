// Test support: gradient checks against central finite differences, in float64.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <vector>

#include <kirzl/kirzl.hpp>

namespace kirzl::testing {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;
  double rtol = 1e-4;
};

/// Checks d(sum(f(inputs) * w))/d(input) for every input that requires grad against central
/// differences, where w is a fixed random weighting (so every output element matters). Inputs
/// must be f64. Returns an empty string on success, else a description of the first mismatch.
inline std::string gradcheck_message(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                     std::vector<Tensor> inputs, const GradcheckOptions& o = {}) {
  Generator gen(1234);
  Tensor out0 = f(inputs);
  Tensor w = randn(out0.shape(), {.dtype = DType::f64}, &gen);
  auto scalar = [&](const std::vector<Tensor>& in) {
    NoGradGuard g;
    return sum(mul(f(in), w)).item();
  };
  for (auto& t : inputs)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor loss = sum(mul(f(inputs), w));
  loss.backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    if (x.dtype() != DType::f64) return "input " + std::to_string(i) + " is not f64";
    Tensor analytic = x.grad();
    if (!analytic.defined()) analytic = zeros_like(x);
    analytic = analytic.contiguous();
    std::vector<double> a = analytic.to_vector<double>();
    // Perturb through a contiguous index walk over the (possibly strided) input.
    for (int64_t k = 0; k < x.numel(); ++k) {
      // Locate element k (row-major) of x in its storage.
      int64_t rem = k, off = x.offset();
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        off += (rem % x.size(d)) * x.stride(d);
        rem /= x.size(d);
      }
      double* p = static_cast<double*>(x.storage().data()) + off;
      double orig = *p;
      *p = orig + o.eps;
      double fp = scalar(inputs);
      *p = orig - o.eps;
      double fm = scalar(inputs);
      *p = orig;
      double numeric = (fp - fm) / (2 * o.eps);
      if (std::abs(numeric - a[k]) > o.atol + o.rtol * std::abs(numeric)) {
        std::ostringstream os;
        os << "input " << i << " (" << x.describe() << ") element " << k << ": analytic " << a[k] << " vs numeric "
           << numeric;
        return os.str();
      }
    }
  }
  return "";
}

/// Random f64 input that requires grad.
inline Tensor rand_input(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed);
  return uniform(shape, low, high, {.dtype = DType::f64}, &gen).requires_grad_();
}

/// Random f64 (or `dt`) normal values from a seeded generator, not requiring grad.
inline Tensor randn_t(const Shape& shape, uint64_t seed, DType dt = DType::f64) {
  Generator gen(seed);
  return randn(shape, {.dtype = dt}, &gen);
}

}  // namespace kirzl::testing

#define EXPECT_GRADCHECK(f, ...) EXPECT_EQ(::kirzl::testing::gradcheck_message((f), __VA_ARGS__), "")
