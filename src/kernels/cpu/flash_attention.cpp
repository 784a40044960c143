// CPU reference of the flash attention kernels: the same contract as the CUDA kernels (strided
// [B, H, T, D] inputs, output plus per-row log-sum-exp, backward from the log-sum-exp), computed
// row by row in f32 (f64 for f64) with plain loops; parallel over (batch, head) only, so every sum
// runs in one fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/flash_attention.h"

namespace kirzl::kernels::cpu {

namespace {

// Element (b, h, t, 0) of a [B, H, T, D] tensor with last-dim stride 1.
template <typename T> struct Strided4 {
  T* base;
  int64_t sb, sh, st;
  T* row(int64_t b, int64_t h, int64_t t) const { return base + b * sb + h * sh + t * st; }
};
template <typename T> Strided4<T> view4(const Tensor& t) {
  return {static_cast<T*>(const_cast<void*>(t.data_ptr())), t.stride(0), t.stride(1), t.stride(2)};
}

}  // namespace

void flash_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  dispatch_floating(q.dtype(), "flash_attention", [&]<typename E>() {
    using A = acc_t<E>;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out);
    A* lp = lse.data<A>();
    const A sc = static_cast<A>(scale);
    parallel_rows(B * H, T * T * D, [&](int64_t bh0, int64_t bh1) {
      std::vector<A> acc(D), s(T);
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        for (int64_t i = 0; i < T; ++i) {
          const E* qi = Q.row(b, h, i);
          A m = -std::numeric_limits<A>::infinity();
          for (int64_t j = 0; j <= i; ++j) {
            const E* kj = K.row(b, h, j);
            A dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<A>(qi[d]) * static_cast<A>(kj[d]);
            s[j] = dot * sc;
            m = std::max(m, s[j]);
          }
          A sum = 0;
          std::fill(acc.begin(), acc.end(), A(0));
          for (int64_t j = 0; j <= i; ++j) {
            const A p = std::exp(s[j] - m);
            sum += p;
            const E* vj = V.row(b, h, j);
            for (int64_t d = 0; d < D; ++d) acc[d] += p * static_cast<A>(vj[d]);
          }
          E* oi = O.row(b, h, i);
          for (int64_t d = 0; d < D; ++d) oi[d] = static_cast<E>(acc[d] / sum);
          lp[bh * T + i] = m + std::log(sum);
        }
      }
    });
  });
}

void flash_attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out,
                              const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  dispatch_floating(q.dtype(), "flash_attention_backward", [&]<typename E>() {
    using A = acc_t<E>;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out), G = view4<E>(g);
    const auto GQ = view4<E>(gq), GK = view4<E>(gk), GV = view4<E>(gv);
    const A* lp = lse.data<A>();
    const A sc = static_cast<A>(scale);
    parallel_rows(B * H, T * T * D, [&](int64_t bh0, int64_t bh1) {
      std::vector<A> dk(T * D), dv(T * D), dq(D);
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        std::fill(dk.begin(), dk.end(), A(0));
        std::fill(dv.begin(), dv.end(), A(0));
        for (int64_t i = 0; i < T; ++i) {
          const E *qi = Q.row(b, h, i), *gi = G.row(b, h, i), *oi = O.row(b, h, i);
          // delta_i = dO_i . O_i = sum_j P_ij dP_ij.
          A delta = 0;
          for (int64_t d = 0; d < D; ++d) delta += static_cast<A>(gi[d]) * static_cast<A>(oi[d]);
          std::fill(dq.begin(), dq.end(), A(0));
          const A l = lp[bh * T + i];
          for (int64_t j = 0; j <= i; ++j) {
            const E *kj = K.row(b, h, j), *vj = V.row(b, h, j);
            A s = 0, dp = 0;
            for (int64_t d = 0; d < D; ++d) {
              s += static_cast<A>(qi[d]) * static_cast<A>(kj[d]);
              dp += static_cast<A>(gi[d]) * static_cast<A>(vj[d]);
            }
            const A p = std::exp(s * sc - l);
            const A ds = p * (dp - delta) * sc;
            for (int64_t d = 0; d < D; ++d) {
              dv[j * D + d] += p * static_cast<A>(gi[d]);
              dk[j * D + d] += ds * static_cast<A>(qi[d]);
              dq[d] += ds * static_cast<A>(kj[d]);
            }
          }
          E* gqi = GQ.row(b, h, i);
          for (int64_t d = 0; d < D; ++d) gqi[d] = static_cast<E>(dq[d]);
        }
        for (int64_t j = 0; j < T; ++j) {
          E *gkj = GK.row(b, h, j), *gvj = GV.row(b, h, j);
          for (int64_t d = 0; d < D; ++d) {
            gkj[d] = static_cast<E>(dk[j * D + d]);
            gvj[d] = static_cast<E>(dv[j * D + d]);
          }
        }
      }
    });
  });
}

void register_flash_attention_kernels() {
  KIRZL_REGISTER_KERNEL(flash_attention_forward, DeviceType::CPU, &flash_attention_forward);
  KIRZL_REGISTER_KERNEL(flash_attention_backward, DeviceType::CPU, &flash_attention_backward);
}

}  // namespace kirzl::kernels::cpu
