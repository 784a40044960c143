// kirzl's first demo: a two-layer MLP learns to separate three interleaved spirals.
//
// Everything here is plain autograd: forward with ops, loss.backward(), and a hand-written SGD
// step under NoGradGuard. Run: ./build/examples/spiral [--steps N] [--lr X] [--seed S] [--hidden H] (--help: the defaults)
#include <kirzl/kirzl.hpp>

#include "spiral_args.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

namespace {

using Args = kirzl::examples::SpiralArgs;

// Three arms of a spiral with a little noise: a classic set that no linear model can separate.
void make_spirals(int per_class, kirzl::Generator& gen, kirzl::Tensor& x, kirzl::Tensor& y) {
  const int classes = 3, n = per_class * classes;
  auto noise = kirzl::randn({n}, {.dtype = kirzl::DType::f64}, &gen).to_vector<double>();
  std::vector<float> xs(2 * n);
  std::vector<int64_t> ys(n);
  for (int c = 0; c < classes; ++c)
    for (int i = 0; i < per_class; ++i) {
      int k = c * per_class + i;
      double r = static_cast<double>(i) / per_class;
      double t = c * 4.0 + 4.0 * r + 0.2 * noise[k];
      xs[2 * k] = static_cast<float>(r * std::sin(t));
      xs[2 * k + 1] = static_cast<float>(r * std::cos(t));
      ys[k] = c;
    }
  x = kirzl::from_vector(xs, {n, 2}, {.dtype = kirzl::DType::f32});
  y = kirzl::from_vector(ys, {n});
}

int train(const Args& args) {
  using namespace kirzl;
  Generator gen(args.seed);
  Tensor x, y;
  make_spirals(args.points_per_class, gen, x, y);

  // Kaiming-uniform-like initialisation, drawn from the seeded generator.
  auto init = [&](Shape shape, int64_t fan_in) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return uniform(shape, -bound, bound, {}, &gen).requires_grad_();
  };
  Tensor w1 = init({args.hidden, 2}, 2), b1 = init({args.hidden}, 2);
  Tensor w2 = init({3, args.hidden}, args.hidden), b2 = init({3}, args.hidden);
  std::vector<Tensor> params{w1, b1, w2, b2};

  auto start = std::chrono::steady_clock::now();
  double first_loss = 0, loss_value = 0;
  for (int step = 0; step <= args.steps; ++step) {
    Tensor logits = linear(relu(linear(x, w1, b1)), w2, b2);
    Tensor loss = cross_entropy(logits, y);
    for (auto& p : params) p.set_grad(Tensor());
    loss.backward();
    {
      NoGradGuard no_grad;
      for (auto& p : params) p.add_(p.grad(), -args.lr);
    }
    loss_value = loss.item();
    if (step == 0) first_loss = loss_value;
    if (step % (args.steps / 10 > 0 ? args.steps / 10 : 1) == 0) std::printf("step %5d  loss %.4f\n", step, loss_value);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  NoGradGuard no_grad;
  Tensor pred = argmax(linear(relu(linear(x, w1, b1)), w2, b2), 1);
  double accuracy = mean(eq(pred, y).to(DType::f32)).item();
  std::printf("{\"demo\": \"spiral\", \"first_loss\": %.4f, \"final_loss\": %.4f, \"train_accuracy\": %.4f, \"steps\": %d, \"seconds\": %.2f}\n",
              first_loss, loss_value, accuracy, args.steps, seconds);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  return kirzl::examples::run_example_main<Args>("spiral", argc, argv, kirzl::examples::parse_spiral_args, [](const Args& args) {
    try {
      return train(args);
    } catch (const kirzl::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  });
}
