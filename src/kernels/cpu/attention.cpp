// CPU reference causal attention: plain loops per (batch, head), parallel over batches only so
// every sum runs in one fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), Dv = v.size(2);
  dispatch_floating(q.dtype(), "causal_attention", [&]<typename T_>() {
    using A = acc_t<T_>;
    const T_ *qp = q.data<T_>(), *kp = k.data<T_>(), *vp = v.data<T_>();
    T_* op = out.data<T_>();
    A* pp = probs.data<A>();
    parallel_rows(B, T * T * (D + Dv), [&](int64_t b0, int64_t b1) {
      std::vector<A> acc(Dv);
      for (int64_t b = b0; b < b1; ++b) {
        const T_ *qb = qp + b * T * D, *kb = kp + b * T * D, *vb = vp + b * T * Dv;
        for (int64_t i = 0; i < T; ++i) {
          A* p = pp + (b * T + i) * T;
          A m = -std::numeric_limits<A>::infinity();
          for (int64_t j = 0; j <= i; ++j) {
            A s = 0;
            for (int64_t d = 0; d < D; ++d) s += static_cast<A>(qb[i * D + d]) * static_cast<A>(kb[j * D + d]);
            p[j] = s * static_cast<A>(scale);
            m = std::max(m, p[j]);
          }
          A sum = 0;
          for (int64_t j = 0; j <= i; ++j) {
            p[j] = std::exp(p[j] - m);
            sum += p[j];
          }
          std::fill(acc.begin(), acc.end(), A(0));
          for (int64_t j = 0; j <= i; ++j) {
            p[j] /= sum;
            for (int64_t e = 0; e < Dv; ++e) acc[e] += p[j] * static_cast<A>(vb[j * Dv + e]);
          }
          for (int64_t j = i + 1; j < T; ++j) p[j] = 0;  // masked: exactly zero probability
          for (int64_t e = 0; e < Dv; ++e) op[(b * T + i) * Dv + e] = static_cast<T_>(acc[e]);
        }
      }
    });
  });
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q,
                        const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), Dv = v.size(2);
  dispatch_floating(q.dtype(), "causal_attention_backward", [&]<typename T_>() {
    using A = acc_t<T_>;
    const T_ *qp = q.data<T_>(), *kp = k.data<T_>(), *vp = v.data<T_>(), *gp = g.data<T_>();
    const A* pp = probs.data<A>();
    T_* gqp = gq.defined() ? gq.data<T_>() : nullptr;
    T_* gkp = gk.defined() ? gk.data<T_>() : nullptr;
    T_* gvp = gv.defined() ? gv.data<T_>() : nullptr;
    const A sc = static_cast<A>(scale);
    parallel_rows(B, T * T * (D + Dv), [&](int64_t b0, int64_t b1) {
      std::vector<A> dk(T * D), dv(T * Dv), ds(T), dq(D);
      for (int64_t b = b0; b < b1; ++b) {
        const T_ *qb = qp + b * T * D, *kb = kp + b * T * D, *vb = vp + b * T * Dv, *gb = gp + b * T * Dv;
        std::fill(dk.begin(), dk.end(), A(0));
        std::fill(dv.begin(), dv.end(), A(0));
        for (int64_t i = 0; i < T; ++i) {
          const A* p = pp + (b * T + i) * T;
          const T_* gi = gb + i * Dv;
          // dP_ij = g_i . v_j; dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij').
          A dot = 0;
          for (int64_t j = 0; j <= i; ++j) {
            A dp = 0;
            for (int64_t e = 0; e < Dv; ++e) {
              dp += static_cast<A>(gi[e]) * static_cast<A>(vb[j * Dv + e]);
              dv[j * Dv + e] += p[j] * static_cast<A>(gi[e]);
            }
            ds[j] = dp;
            dot += p[j] * dp;
          }
          std::fill(dq.begin(), dq.end(), A(0));
          for (int64_t j = 0; j <= i; ++j) {
            const A s = p[j] * (ds[j] - dot) * sc;
            for (int64_t d = 0; d < D; ++d) {
              dq[d] += s * static_cast<A>(kb[j * D + d]);
              dk[j * D + d] += s * static_cast<A>(qb[i * D + d]);
            }
          }
          if (gqp)
            for (int64_t d = 0; d < D; ++d) gqp[(b * T + i) * D + d] = static_cast<T_>(dq[d]);
        }
        if (gkp)
          for (int64_t x = 0; x < T * D; ++x) gkp[b * T * D + x] = static_cast<T_>(dk[x]);
        if (gvp)
          for (int64_t x = 0; x < T * Dv; ++x) gvp[b * T * Dv + x] = static_cast<T_>(dv[x]);
      }
    });
  });
}

void register_attention_kernels() {
  KIRZL_REGISTER_KERNEL(attention_forward, DeviceType::CPU, &attention_forward);
  KIRZL_REGISTER_KERNEL(attention_backward, DeviceType::CPU, &attention_backward);
}

}  // namespace kirzl::kernels::cpu
