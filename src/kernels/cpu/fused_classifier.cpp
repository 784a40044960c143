// CPU reference for the classifier loss: one pass per row with an online max and sum, and the
// gradient written over the logits in place.
#include <cmath>
#include <limits>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/fused_classifier.h"

namespace kirzl::kernels::cpu {

void classifier_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                        int64_t classes, int64_t ignore_index) {
  const int64_t rows = targets.numel(), v = logits.numel() / std::max<int64_t>(rows, 1);
  dispatch_floating(logits.dtype(), "linear_cross_entropy", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = logits.data<T>();
    A *lp = losses.data<A>(), *sp = lse.data<A>();
    dispatch_integral(targets.dtype(), "linear_cross_entropy", [&]<typename I>() {
      const I* tp = targets.data<I>();
      parallel_rows(rows, v, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* xr = xp + r * v;
          // Online softmax: rescale the running sum whenever the running max grows.
          A m = -std::numeric_limits<A>::infinity(), s = 0;
          for (int64_t j = 0; j < classes; ++j) {  // the padding columns [classes, v) are no classes
            const A x = static_cast<A>(xr[j]);
            if (x > m) {
              s = s * std::exp(m - x) + A(1);
              m = x;
            } else {
              s += std::exp(x - m);
            }
          }
          const A l = m + std::log(s);
          sp[r] = l;
          const int64_t t = static_cast<int64_t>(tp[r]);
          lp[r] = t == ignore_index ? A(0) : l - static_cast<A>(xr[t]);
        }
      });
    });
  });
}

void classifier_backward_inplace(Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad,
                                 double scale, int64_t classes, int64_t ignore_index) {
  const int64_t rows = targets.numel(), v = logits.numel() / std::max<int64_t>(rows, 1);
  const double g0 = grad.to(DType::f64).item() * scale;
  dispatch_floating(logits.dtype(), "linear_cross_entropy_backward", [&]<typename T>() {
    using A = acc_t<T>;
    T* xp = logits.data<T>();
    const A* sp = lse.data<A>();
    const A gs = static_cast<A>(g0);
    dispatch_integral(targets.dtype(), "linear_cross_entropy_backward", [&]<typename I>() {
      const I* tp = targets.data<I>();
      parallel_rows(rows, v, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          T* xr = xp + r * v;
          const int64_t t = static_cast<int64_t>(tp[r]);
          if (t == ignore_index) {
            for (int64_t j = 0; j < v; ++j) xr[j] = T(0);
            continue;
          }
          const A l = sp[r];
          for (int64_t j = 0; j < classes; ++j) {
            const A p = std::exp(static_cast<A>(xr[j]) - l);
            xr[j] = static_cast<T>((p - (j == t ? A(1) : A(0))) * gs);
          }
          for (int64_t j = classes; j < v; ++j) xr[j] = T(0);  // padding: no gradient
        }
      });
    });
  });
}

void register_fused_classifier_kernels() {
  KIRZL_REGISTER_KERNEL(classifier_forward, DeviceType::CPU, &classifier_forward);
  KIRZL_REGISTER_KERNEL(classifier_backward_inplace, DeviceType::CPU, &classifier_backward_inplace);
}

}  // namespace kirzl::kernels::cpu
