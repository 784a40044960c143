#include "kirzl/nn/init.hpp"

#include <cmath>

#include "kirzl/autograd.hpp"

namespace kirzl::nn::init {

namespace {
// Draws on the CPU in the tensor's dtype, then copies in: the same values on every device.
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard g;
  t.copy_(values);
}
}  // namespace

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  assign(t, uniform(t.shape(), low, high, {.dtype = t.dtype()}, gen));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  assign(t, normal(t.shape(), mean, std, {.dtype = t.dtype()}, gen));
}

void constant_(Tensor& t, double value) {
  NoGradGuard g;
  t.fill_(value);
}
void zeros_(Tensor& t) { constant_(t, 0.0); }
void ones_(Tensor& t) { constant_(t, 1.0); }

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  KIRZL_CHECK(w.dim() >= 2, "init: fan_in/fan_out need a weight with at least 2 dims, got ", w.describe());
  int64_t receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
  return {w.size(1) * receptive, w.size(0) * receptive};
}

void kaiming_uniform_(Tensor& t, double a, Generator* gen) {
  auto [fan_in, fan_out] = fans(t);
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in));
  uniform_(t, -bound, bound, gen);
}

void xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = fans(t);
  double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform_(t, -bound, bound, gen);
}

}  // namespace kirzl::nn::init
