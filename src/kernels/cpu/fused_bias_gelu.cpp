// CPU reference for bias_gelu: GPT-2's tanh approximation (Note [cpu tanh-GELU]); the bias gradient is summed over rows
// in row order (deterministic).
#include <cmath>
#include <vector>

#include "kernels/cpu/gelu_tanh.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/fused_bias_gelu.h"

namespace kirzl::kernels::cpu {


void bias_gelu_forward(Tensor& y, const Tensor& x, const Tensor& bias, int64_t n) {
  const int64_t m = x.numel() / n;
  dispatch_floating(x.dtype(), "bias_gelu", [&]<typename T>() {
    using A = acc_t<T>;
    const T *xp = x.data<T>(), *bp = bias.data<T>();
    T* yp = y.data<T>();
    parallel_rows(m, n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < n; ++j) {
          // Round h to T first so the result equals add() then gelu().
          const A h = static_cast<A>(static_cast<T>(static_cast<A>(xp[r * n + j]) + static_cast<A>(bp[j])));
          yp[r * n + j] = static_cast<T>(gelu_tanh(h));
        }
    });
  });
}

void bias_gelu_backward(Tensor& gx, Tensor& gbias, const Tensor& g, const Tensor& x, const Tensor& bias, int64_t n) {
  const int64_t m = x.numel() / n;
  dispatch_floating(x.dtype(), "bias_gelu_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T *xp = x.data<T>(), *bp = bias.data<T>(), *gp = g.data<T>();
    auto grad_at = [&](int64_t r, int64_t j) {
      const A h = static_cast<A>(static_cast<T>(static_cast<A>(xp[r * n + j]) + static_cast<A>(bp[j])));
      return static_cast<A>(gp[r * n + j]) * gelu_tanh_grad(h);
    };
    if (gx.defined()) {
      T* gxp = gx.data<T>();
      parallel_rows(m, n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t j = 0; j < n; ++j) gxp[r * n + j] = static_cast<T>(grad_at(r, j));
      });
    }
    if (gbias.defined()) {
      std::vector<A> acc(n, A(0));
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) acc[j] += grad_at(r, j);
      T* gbp = gbias.data<T>();
      for (int64_t j = 0; j < n; ++j) gbp[j] = static_cast<T>(acc[j]);
    }
  });
}

void register_fused_bias_gelu_kernels() {
  KIRZL_REGISTER_KERNEL(bias_gelu_forward, DeviceType::CPU, &bias_gelu_forward);
  KIRZL_REGISTER_KERNEL(bias_gelu_backward, DeviceType::CPU, &bias_gelu_backward);
}

}  // namespace kirzl::kernels::cpu
