// CPU cross-entropy fused with log-softmax: one pass per row for the statistics, one for the
// gradient, never materialising the probabilities (Note [dim rows] for the C-at-dim-1 layout).
#include <cmath>
#include <vector>

#include "kernels/cpu/dim_rows.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/vec_exp.h"
#include "kernels/cross_entropy.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

namespace {

DimRows class_rows(const Tensor& logits) {
  if (logits.dim() == 1) return DimRows{1, logits.size(0), 1};
  return dim_rows(logits.shape(), 1);
}

}  // namespace

void cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                           int64_t ignore_index, double label_smoothing) {
  const DimRows dr = class_rows(logits);
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using A = acc_t<T>;
    dispatch_integral(targets.dtype(), "cross_entropy", [&]<typename I>() {
      const T* x = logits.data<T>();
      const I* tg = targets.data<I>();
      A* loss = losses.data<A>();
      A* lse_out = lse.data<A>();
      const int64_t n = dr.len, s = dr.stride();
      const A eps = static_cast<A>(label_smoothing);
      parallel_rows(dr.rows(), n, [&](int64_t begin, int64_t end) {
        std::vector<A> buf(n), e(n);
        for (int64_t r = begin; r < end; ++r) {
          const T* xr = x + dr.base(r);
          for (int64_t c = 0; c < n; ++c) buf[c] = static_cast<A>(xr[c * s]);
          A m = lane_max(buf.data(), n);
          if (!std::isfinite(m)) m = A(0);
          for (int64_t c = 0; c < n; ++c) e[c] = vec_exp(buf[c] - m);
          const A l = m + std::log(lane_sum(e.data(), n));
          lse_out[r] = l;
          const int64_t t = static_cast<int64_t>(tg[r]);
          if (t == ignore_index) {
            loss[r] = 0;
            continue;
          }
          // -sum_c q_c log p_c with q = (1 - eps) onehot + eps / C, and log p_c = x_c - lse.
          const A nll = l - buf[t];
          loss[r] = eps == A(0) ? nll : (A(1) - eps) * nll + eps * (l - lane_sum(buf.data(), n) / static_cast<A>(n));
        }
      });
    });
  });
}

void cross_entropy_backward(Tensor& gx, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad, double scale, int64_t ignore_index, double label_smoothing) {
  const DimRows dr = class_rows(logits);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using A = acc_t<T>;
    dispatch_integral(targets.dtype(), "cross_entropy_backward", [&]<typename I>() {
      const T* x = logits.data<T>();
      const I* tg = targets.data<I>();
      const A* lse_in = lse.data<A>();
      const T* g = grad.data<T>();
      const bool per_row = grad.numel() != 1;
      T* out = gx.data<T>();
      const int64_t n = dr.len, s = dr.stride();
      const A eps = static_cast<A>(label_smoothing);
      const A off = eps / static_cast<A>(n);  // smoothing mass on every class
      const A on = A(1) - eps;                // extra mass on the target class
      parallel_rows(dr.rows(), n, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t b = dr.base(r);
          const int64_t t = static_cast<int64_t>(tg[r]);
          if (t == ignore_index) {
            for (int64_t c = 0; c < n; ++c) out[b + c * s] = T(0);
            continue;
          }
          const A w = static_cast<A>(g[per_row ? r : 0]) * static_cast<A>(scale);
          const A l = lse_in[r];
          for (int64_t c = 0; c < n; ++c)
            out[b + c * s] = static_cast<T>((vec_exp(static_cast<A>(x[b + c * s]) - l) - off) * w);
          // The target's one-hot term, patched afterwards so the loop above has no select.
          out[b + t * s] = static_cast<T>((vec_exp(static_cast<A>(x[b + t * s]) - l) - off - on) * w);
        }
      });
    });
  });
}

void register_cross_entropy_kernels() {
  KIRZL_REGISTER_KERNEL(cross_entropy_forward, DeviceType::CPU, &cross_entropy_forward);
  KIRZL_REGISTER_KERNEL(cross_entropy_backward, DeviceType::CPU, &cross_entropy_backward);
}

}  // namespace kirzl::kernels::cpu
