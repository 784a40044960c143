// Tutorial step 6 (docs/tutorial/06-your-own-op.md): an op of your own, with its backward.
//
// softplus(x) = log(1 + exp(x)), a smooth ReLU. The forward is a plain loop over the elements
// (the "kernel"); the backward is recorded with autograd::record, the same call kirzl's own ops
// use (src/ops/). A gradient check then compares the backward with finite differences in f64.
//
//   build/tutorial/custom_op
#include <kirzl/kirzl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace kirzl;

namespace {

// The kernel: one element at a time, in a numerically safe form (exp never overflows).
template <typename T>
void softplus_kernel(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
}

// The op: check the input, run the kernel, record the backward.
Tensor softplus(const Tensor& x) {
  KIRZL_CHECK(x.device().is_cpu(), "softplus: this tutorial op runs on the CPU only, got ", x.describe());
  KIRZL_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, "softplus: expected f32 or f64, got ", x.describe());
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), {.dtype = x.dtype()});
  if (x.dtype() == DType::f32)
    softplus_kernel(xc.data<float>(), y.data<float>(), x.numel());
  else
    softplus_kernel(xc.data<double>(), y.data<double>(), x.numel());

  // d softplus / dx = sigmoid(x). The backward captures x detached (no graph through the saved
  // tensor) and is written with ops, so it runs on any dtype they support.
  autograd::record("softplus", y, {x}, [xs = x.detach()](const autograd::GradContext& ctx) {
    return std::vector<Tensor>{ctx.grad() * sigmoid(xs)};
  });
  return y;
}

// Compares d(sum(w * f(x)))/dx from backward with central differences, element by element.
double gradcheck_max_error(Tensor x) {
  Tensor w = randn(x.shape(), {.dtype = DType::f64});
  auto loss_at = [&](const Tensor& input) { return sum(mul(softplus(input), w)).item(); };

  x.requires_grad_();
  sum(mul(softplus(x), w)).backward();
  std::vector<double> analytic = x.grad().to_vector<double>();

  NoGradGuard no_grad;
  std::vector<double> values = x.to_vector<double>();
  const double eps = 1e-6;
  double max_error = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    std::vector<double> plus = values, minus = values;
    plus[i] += eps;
    minus[i] -= eps;
    double numeric = (loss_at(from_vector(plus, x.shape())) - loss_at(from_vector(minus, x.shape()))) / (2 * eps);
    max_error = std::max(max_error, std::abs(numeric - analytic[i]));
  }
  return max_error;
}

}  // namespace

int main() {
  manual_seed(0);
  Tensor x = from_vector(std::vector<float>{-30.f, -1.f, 0.f, 1.f, 30.f});
  std::printf("softplus(%s) =\n%s\n", x.str().c_str(), softplus(x).str().c_str());

  // Train with it: fit y = softplus(a) * x by gradient descent on a.
  Tensor a = zeros({1}, {.requires_grad = true});
  Tensor xs = randn({64}), ys = xs * 2.0;
  for (int step = 0; step < 200; ++step) {
    Tensor loss = mse_loss(softplus(a) * xs, ys);
    a.set_grad(Tensor());
    loss.backward();
    NoGradGuard no_grad;
    a.add_(a.grad(), -0.5);
  }
  std::printf("fitted softplus(a) = %.4f (target 2)\n", softplus(a.detach()).item());

  const double error = gradcheck_max_error(randn({4, 5}, {.dtype = DType::f64}) * 3.0);
  const double tolerance = 1e-6;
  std::printf("gradcheck: max |analytic - numeric| = %.2e (tolerance %.0e): %s\n", error, tolerance,
              error <= tolerance ? "passed" : "FAILED");
  std::printf("{\"op\": \"softplus\", \"gradcheck_max_error\": %.3e, \"gradcheck_passed\": %s}\n", error,
              error <= tolerance ? "true" : "false");
  return error <= tolerance ? 0 : 1;
}
