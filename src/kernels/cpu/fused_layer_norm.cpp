// CPU reference for residual_layer_norm: rows in parallel; weight/bias gradients summed over rows
// in row order on one thread (deterministic).
#include <cmath>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/fused_layer_norm.h"

namespace kirzl::kernels::cpu {

void residual_layer_norm_forward(Tensor& sum, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                 const Tensor& residual, const Tensor& weight, const Tensor& bias, int64_t n,
                                 double eps) {
  const int64_t m = x.numel() / n;
  dispatch_floating(x.dtype(), "residual_layer_norm", [&]<typename T>() {
    using A = acc_t<T>;
    const T *xp = x.data<T>(), *rp = residual.data<T>();
    const T* wp = weight.defined() ? weight.data<T>() : nullptr;
    const T* bp = bias.defined() ? bias.data<T>() : nullptr;
    T *sp = sum.data<T>(), *yp = y.data<T>();
    A *mp = mean.data<A>(), *rsp = rstd.data<A>();
    parallel_rows(m, n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T *xr = xp + r * n, *rr = rp + r * n;
        T* sr = sp + r * n;
        A mu = 0;
        for (int64_t j = 0; j < n; ++j) {
          sr[j] = static_cast<T>(static_cast<A>(xr[j]) + static_cast<A>(rr[j]));
          mu += static_cast<A>(sr[j]);
        }
        mu /= static_cast<A>(n);
        A var = 0;
        for (int64_t j = 0; j < n; ++j) {
          const A d = static_cast<A>(sr[j]) - mu;
          var += d * d;
        }
        var /= static_cast<A>(n);
        const A rs = A(1) / std::sqrt(var + static_cast<A>(eps));
        mp[r] = mu;
        rsp[r] = rs;
        T* yr = yp + r * n;
        for (int64_t j = 0; j < n; ++j) {
          A v = (static_cast<A>(sr[j]) - mu) * rs;
          if (wp) v *= static_cast<A>(wp[j]);
          if (bp) v += static_cast<A>(bp[j]);
          yr[j] = static_cast<T>(v);
        }
      }
    });
  });
}

void residual_layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g_y, const Tensor& g_sum,
                                  const Tensor& sum, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                  int64_t n) {
  const int64_t m = sum.numel() / n;
  dispatch_floating(sum.dtype(), "residual_layer_norm_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T *gp = g_y.data<T>(), *sp = sum.data<T>();
    const T* gsp = g_sum.defined() ? g_sum.data<T>() : nullptr;
    const T* wp = weight.defined() ? weight.data<T>() : nullptr;
    const A *mp = mean.data<A>(), *rsp = rstd.data<A>();
    if (gx.defined()) {
      T* gxp = gx.data<T>();
      parallel_rows(m, n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T *gr = gp + r * n, *sr = sp + r * n;
          const A mu = mp[r], rs = rsp[r];
          // dxhat = g * w; dx = rs * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
          A s1 = 0, s2 = 0;
          for (int64_t j = 0; j < n; ++j) {
            const A dxh = static_cast<A>(gr[j]) * (wp ? static_cast<A>(wp[j]) : A(1));
            s1 += dxh;
            s2 += dxh * (static_cast<A>(sr[j]) - mu) * rs;
          }
          s1 /= static_cast<A>(n);
          s2 /= static_cast<A>(n);
          T* out = gxp + r * n;
          for (int64_t j = 0; j < n; ++j) {
            const A dxh = static_cast<A>(gr[j]) * (wp ? static_cast<A>(wp[j]) : A(1));
            const A xh = (static_cast<A>(sr[j]) - mu) * rs;
            A v = rs * (dxh - s1 - xh * s2);
            if (gsp) v += static_cast<A>(gsp[r * n + j]);
            out[j] = static_cast<T>(v);
          }
        }
      });
    }
    if (gw.defined() || gb.defined()) {
      std::vector<A> aw(n, A(0)), ab(n, A(0));
      for (int64_t r = 0; r < m; ++r) {
        const A mu = mp[r], rs = rsp[r];
        for (int64_t j = 0; j < n; ++j) {
          const A g = static_cast<A>(gp[r * n + j]);
          aw[j] += g * (static_cast<A>(sp[r * n + j]) - mu) * rs;
          ab[j] += g;
        }
      }
      if (gw.defined())
        for (int64_t j = 0; j < n; ++j) gw.data<T>()[j] = static_cast<T>(aw[j]);
      if (gb.defined())
        for (int64_t j = 0; j < n; ++j) gb.data<T>()[j] = static_cast<T>(ab[j]);
    }
  });
}

void register_fused_layer_norm_kernels() {
  KIRZL_REGISTER_KERNEL(residual_layer_norm_forward, DeviceType::CPU, &residual_layer_norm_forward);
  KIRZL_REGISTER_KERNEL(residual_layer_norm_backward, DeviceType::CPU, &residual_layer_norm_backward);
}

}  // namespace kirzl::kernels::cpu
