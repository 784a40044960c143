// A separate project using an installed kirzl: trains y = 2x + 1 with autograd and checks it.
#include <kirzl/kirzl.hpp>

#include <cmath>
#include <cstdio>

int main() {
  kirzl::manual_seed(0);
  auto x = kirzl::randn({64, 1});
  auto y = x * 2.0 + 1.0;
  auto w = kirzl::zeros({1, 1}, {.requires_grad = true});
  auto b = kirzl::zeros({1}, {.requires_grad = true});
  double loss_value = 0;
  for (int step = 0; step < 200; ++step) {
    auto loss = kirzl::mean((kirzl::linear(x, w, b) - y) * (kirzl::linear(x, w, b) - y));
    w.set_grad({});
    b.set_grad({});
    loss.backward();
    kirzl::NoGradGuard g;
    w.add_(w.grad(), -0.1);
    b.add_(b.grad(), -0.1);
    loss_value = loss.item();
  }
  std::printf("consumer: w=%.4f b=%.4f loss=%.2e (config: CUDA=%d MPI=%d)\n", w.item(), b.item(), loss_value,
              KIRZL_HAS_CUDA, KIRZL_HAS_MPI);
  return std::abs(w.item() - 2.0) < 1e-3 && std::abs(b.item() - 1.0) < 1e-3 ? 0 : 1;
}
