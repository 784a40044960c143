// CPU layer norm: one row per task for the forward and the input gradient; the weight and bias
// gradients are column sums, computed per block of columns so that no two threads add into the
// same element (deterministic without atomics or per-thread partials).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/dispatch.h"
#include "kernels/layer_norm.h"

namespace kirzl::kernels::cpu {

void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  dispatch_floating(x.dtype(), "layer_norm", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    A* mu_out = mean.data<A>();
    A* rs_out = rstd.data<A>();
    parallel_rows(m, n, [&](int64_t begin, int64_t end) {
      std::vector<A> buf(n), d(n), d2(n);
      for (int64_t r = begin; r < end; ++r) {
        const T* xr = xp + r * n;
        T* yr = yp + r * n;
        // Corrected two-pass statistics over a cache-resident row: the second pass also sums the
        // deviations from the first mean, which fixes that mean's rounding error (large offsets
        // in f32), and avoids the cancellation of E[x^2] - E[x]^2. Simple loops + lane sums so
        // that everything vectorises (row_reduce.h).
        for (int64_t j = 0; j < n; ++j) buf[j] = static_cast<A>(xr[j]);
        const A mu0 = lane_sum(buf.data(), n) / static_cast<A>(n);
        for (int64_t j = 0; j < n; ++j) {
          d[j] = buf[j] - mu0;
          d2[j] = d[j] * d[j];
        }
        const A shift = lane_sum(d.data(), n) / static_cast<A>(n);
        const A var = std::max(A(0), lane_sum(d2.data(), n) / static_cast<A>(n) - shift * shift);
        const A rs = A(1) / std::sqrt(var + static_cast<A>(eps));
        mu_out[r] = mu0 + shift;
        rs_out[r] = rs;
        if (w && b) {
          for (int64_t j = 0; j < n; ++j)
            yr[j] = static_cast<T>((d[j] - shift) * rs * static_cast<A>(w[j]) + static_cast<A>(b[j]));
        } else {
          for (int64_t j = 0; j < n; ++j) {
            A v = (d[j] - shift) * rs;
            if (w) v *= static_cast<A>(w[j]);
            if (b) v += static_cast<A>(b[j]);
            yr[j] = static_cast<T>(v);
          }
        }
      }
    });
  });
}

void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  dispatch_floating(x.dtype(), "layer_norm_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    const T* gp = g.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const A* mu = mean.data<A>();
    const A* rs = rstd.data<A>();
    if (gx.defined()) {
      T* out = gx.data<T>();
      parallel_rows(m, n, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T *xr = xp + r * n, *gr = gp + r * n;
          // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w.
          A sum_d = 0, sum_dx = 0;
          for (int64_t j = 0; j < n; ++j) {
            A d = static_cast<A>(gr[j]) * (w ? static_cast<A>(w[j]) : A(1));
            A xh = (static_cast<A>(xr[j]) - mu[r]) * rs[r];
            sum_d += d;
            sum_dx += d * xh;
          }
          const A a = sum_d / static_cast<A>(n), bb = sum_dx / static_cast<A>(n);
          T* o = out + r * n;
          for (int64_t j = 0; j < n; ++j) {
            A d = static_cast<A>(gr[j]) * (w ? static_cast<A>(w[j]) : A(1));
            A xh = (static_cast<A>(xr[j]) - mu[r]) * rs[r];
            o[j] = static_cast<T>(rs[r] * (d - a - xh * bb));
          }
        }
      });
    }
    if (!gw.defined() && !gb.defined()) return;
    T* gwp = gw.defined() ? gw.data<T>() : nullptr;
    T* gbp = gb.defined() ? gb.data<T>() : nullptr;
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    parallel_rows(blocks, m * kBlock, [&](int64_t begin, int64_t end) {
      std::vector<A> acc_w(kBlock), acc_b(kBlock);
      for (int64_t blk = begin; blk < end; ++blk) {
        const int64_t j0 = blk * kBlock, j1 = std::min(n, j0 + kBlock);
        std::fill(acc_w.begin(), acc_w.end(), A(0));
        std::fill(acc_b.begin(), acc_b.end(), A(0));
        for (int64_t r = 0; r < m; ++r) {
          const T *xr = xp + r * n, *gr = gp + r * n;
          for (int64_t j = j0; j < j1; ++j) {
            A gv = static_cast<A>(gr[j]);
            acc_w[j - j0] += gv * (static_cast<A>(xr[j]) - mu[r]) * rs[r];
            acc_b[j - j0] += gv;
          }
        }
        for (int64_t j = j0; j < j1; ++j) {
          if (gwp) gwp[j] = static_cast<T>(acc_w[j - j0]);
          if (gbp) gbp[j] = static_cast<T>(acc_b[j - j0]);
        }
      }
    });
  });
}

void register_layer_norm_kernels() {
  KIRZL_REGISTER_KERNEL(layer_norm_forward, DeviceType::CPU, &layer_norm_forward);
  KIRZL_REGISTER_KERNEL(layer_norm_backward, DeviceType::CPU, &layer_norm_backward);
}

}  // namespace kirzl::kernels::cpu
