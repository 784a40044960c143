// CPU softmax / log-softmax: one row at a time along the reduced dim (Note [dim rows]).
#include <cmath>
#include <vector>

#include "kernels/cpu/dim_rows.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/vec_exp.h"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

namespace kirzl::kernels::cpu {

namespace {

// Each row is gathered once into an acc-type scratch buffer (L1/L2 resident), so the input is
// read once and the output written once, with one exp per element, for every dtype and stride.
// The passes over the buffer are separate simple loops so that each vectorises (Note [vec_exp]).
template <typename T>
void softmax_rows(T* out, const T* x, const DimRows& dr, bool log) {
  using A = acc_t<T>;
  const int64_t n = dr.len, s = dr.stride();
  parallel_rows(dr.rows(), n, [&](int64_t begin, int64_t end) {
    std::vector<A> buf(n), e(n);
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + dr.base(r);
      T* outr = out + dr.base(r);
      // Unit stride (the last dim, the common case) gets its own loops: a runtime stride keeps
      // the compiler from vectorising the gather and the store.
      if (s == 1) {
        for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<A>(xr[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<A>(xr[i * s]);
      }
      A m = lane_max(buf.data(), n);
      // An all -inf row gives 0/0 = NaN as in PyTorch; shifting by 0 avoids inf - inf in the exps.
      if (!std::isfinite(m)) m = A(0);
      for (int64_t i = 0; i < n; ++i) e[i] = vec_exp(buf[i] - m);
      const A sum = lane_sum(e.data(), n);
      if (log) {
        const A shift = m + std::log(sum);
        for (int64_t i = 0; i < n; ++i) e[i] = buf[i] - shift;
      } else {
        const A inv = A(1) / sum;
        for (int64_t i = 0; i < n; ++i) e[i] *= inv;
      }
      if (s == 1) {
        for (int64_t i = 0; i < n; ++i) outr[i] = static_cast<T>(e[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) outr[i * s] = static_cast<T>(e[i]);
      }
    }
  });
}

template <typename T>
void softmax_backward_rows(T* gx, const T* g, const T* y, const DimRows& dr, bool log) {
  using A = acc_t<T>;
  const int64_t n = dr.len, s = dr.stride();
  parallel_rows(dr.rows(), n, [&](int64_t begin, int64_t end) {
    std::vector<A> tmp(n);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = dr.base(r);
      const T *gr = g + b, *yr = y + b;
      T* out = gx + b;
      if (log) {
        // gx = g - exp(y) * sum(g)
        for (int64_t i = 0; i < n; ++i) tmp[i] = static_cast<A>(gr[i * s]);
        const A dot = lane_sum(tmp.data(), n);
        for (int64_t i = 0; i < n; ++i)
          out[i * s] = static_cast<T>(tmp[i] - vec_exp(static_cast<A>(yr[i * s])) * dot);
      } else {
        // gx = y * (g - sum(g * y))
        for (int64_t i = 0; i < n; ++i) tmp[i] = static_cast<A>(gr[i * s]) * static_cast<A>(yr[i * s]);
        const A dot = lane_sum(tmp.data(), n);
        for (int64_t i = 0; i < n; ++i)
          out[i * s] = static_cast<T>(static_cast<A>(yr[i * s]) * (static_cast<A>(gr[i * s]) - dot));
      }
    }
  });
}

}  // namespace

void softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (x.numel() == 0) return;
  DimRows dr = dim_rows(x.shape(), dim);
  dispatch_floating(x.dtype(), "softmax", [&]<typename T>() { softmax_rows<T>(out.data<T>(), x.data<T>(), dr, log); });
}

void softmax_backward(Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  if (y.numel() == 0) return;
  DimRows dr = dim_rows(y.shape(), dim);
  dispatch_floating(y.dtype(), "softmax_backward", [&]<typename T>() {
    softmax_backward_rows<T>(gx.data<T>(), g.data<T>(), y.data<T>(), dr, log);
  });
}

void register_softmax_kernels() {
  KIRZL_REGISTER_KERNEL(softmax, DeviceType::CPU, &softmax);
  KIRZL_REGISTER_KERNEL(softmax_backward, DeviceType::CPU, &softmax_backward);
}

}  // namespace kirzl::kernels::cpu
