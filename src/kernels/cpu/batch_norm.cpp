// CPU batch norm: channels in parallel; statistics and reductions accumulate in double.
#include <cmath>

#include "kernels/batch_norm.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

namespace {

struct Layout {
  int64_t N, C, S;
  explicit Layout(const Tensor& x) : N(x.size(0)), C(x.size(1)), S(x.numel() / std::max<int64_t>(x.size(0) * x.size(1), 1)) {}
  int64_t count() const { return N * S; }
};

// Runs f(c) for every channel, channels split across threads when the tensor is large.
template <typename F>
void for_channels(const Layout& l, F&& f) {
  parallel_rows(l.C, l.count(), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) f(c);
  });
}

// Calls f(value_ptr_offset) over channel c's elements: offsets n * C * S + c * S + s.
template <typename F>
void for_channel_elements(const Layout& l, int64_t c, F&& f) {
  for (int64_t n = 0; n < l.N; ++n) {
    const int64_t base = (n * l.C + c) * l.S;
    for (int64_t s = 0; s < l.S; ++s) f(base + s);
  }
}

const double* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<double>() : nullptr; }

}  // namespace

void batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x) {
  const Layout l(x);
  double* mp = mean.data<double>();
  double* vp = var.data<double>();
  dispatch_floating(x.dtype(), "batch_norm", [&]<typename T>() {
    const T* xp = x.data<T>();
    for_channels(l, [&](int64_t c) {
      double s = 0;
      for_channel_elements(l, c, [&](int64_t i) { s += to_double(xp[i]); });
      const double m = s / double(l.count());
      double q = 0;  // second pass: no cancellation from E[x^2] - E[x]^2
      for_channel_elements(l, c, [&](int64_t i) {
        const double d = to_double(xp[i]) - m;
        q += d * d;
      });
      mp[c] = m;
      vp[c] = q / double(l.count());
    });
  });
}

void batch_norm_forward(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                        const Tensor& bias, double eps) {
  const Layout l(x);
  const double *mp = mean.data<double>(), *vp = var.data<double>();
  const double *wp = ptr_or_null(weight), *bp = ptr_or_null(bias);
  dispatch_floating(x.dtype(), "batch_norm", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for_channels(l, [&](int64_t c) {
      const double scale = (wp ? wp[c] : 1.0) / std::sqrt(vp[c] + eps);
      const A a = static_cast<A>(scale), b = static_cast<A>((bp ? bp[c] : 0.0) - mp[c] * scale);
      for_channel_elements(l, c, [&](int64_t i) { yp[i] = T(static_cast<A>(xp[i]) * a + b); });
    });
  });
}

void batch_norm_backward(Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias, const Tensor& grad_y, const Tensor& x,
                         const Tensor& mean, const Tensor& var, const Tensor& weight, double eps, bool training) {
  const Layout l(x);
  const double *mp = mean.data<double>(), *vp = var.data<double>(), *wp = ptr_or_null(weight);
  double* gwp = grad_weight.defined() ? grad_weight.data<double>() : nullptr;
  double* gbp = grad_bias.defined() ? grad_bias.data<double>() : nullptr;
  dispatch_floating(x.dtype(), "batch_norm backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    const T* gp = grad_y.data<T>();
    T* gxp = grad_x.defined() ? grad_x.data<T>() : nullptr;
    for_channels(l, [&](int64_t c) {
      const double m = mp[c], invstd = 1.0 / std::sqrt(vp[c] + eps), w = wp ? wp[c] : 1.0;
      double sum_g = 0, sum_gd = 0;  // sums of g and g * (x - mean)
      for_channel_elements(l, c, [&](int64_t i) {
        const double g = to_double(gp[i]);
        sum_g += g;
        sum_gd += g * (to_double(xp[i]) - m);
      });
      if (gwp) gwp[c] = sum_gd * invstd;
      if (gbp) gbp[c] = sum_g;
      if (!gxp) return;
      const double k = w * invstd;
      if (!training) {
        const A ka = static_cast<A>(k);
        for_channel_elements(l, c, [&](int64_t i) { gxp[i] = T(static_cast<A>(gp[i]) * ka); });
        return;
      }
      // d/dx of w * (x - mean(x)) * invstd(x): k * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean))).
      const double n = double(l.count());
      const A ka = static_cast<A>(k), mg = static_cast<A>(sum_g / n), mu = static_cast<A>(m),
              proj = static_cast<A>(invstd * invstd * sum_gd / n);
      for_channel_elements(l, c, [&](int64_t i) {
        gxp[i] = T(ka * (static_cast<A>(gp[i]) - mg - (static_cast<A>(xp[i]) - mu) * proj));
      });
    });
  });
}

void register_batch_norm_kernels() {
  KIRZL_REGISTER_KERNEL(batch_norm_stats, DeviceType::CPU, &batch_norm_stats);
  KIRZL_REGISTER_KERNEL(batch_norm_forward, DeviceType::CPU, &batch_norm_forward);
  KIRZL_REGISTER_KERNEL(batch_norm_backward, DeviceType::CPU, &batch_norm_backward);
}

}  // namespace kirzl::kernels::cpu
