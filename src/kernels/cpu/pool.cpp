// CPU pooling: one independent [H, W] plane per (sample, channel), planes in parallel.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"

namespace kirzl::kernels::cpu {

namespace {

using G = Pool2dGeometry;

// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1;
};
inline Window window(const G& g, int64_t oh, int64_t ow) {
  const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  return {std::max<int64_t>(hs, 0), std::min(hs + g.kh, g.H), std::max<int64_t>(ws, 0), std::min(ws + g.kw, g.W)};
}

template <typename Fn>
void for_planes(const G& g, Fn&& fn) {
  parallel_rows(g.planes, g.H * g.W, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) fn(p);
  });
}

}  // namespace

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dGeometry& g) {
  dispatch_floating(x.dtype(), "max_pool2d", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    int64_t* ip = indices.defined() ? indices.data<int64_t>() : nullptr;
    for_planes(g, [&](int64_t p) {
      const T* xs = xp + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const Window w = window(g, oh, ow);
          A best = -std::numeric_limits<A>::infinity();
          int64_t arg = w.h0 * g.W + w.w0;
          for (int64_t h = w.h0; h < w.h1; ++h)
            for (int64_t c = w.w0; c < w.w1; ++c) {
              const A v = static_cast<A>(xs[h * g.W + c]);
              if (v > best || (std::isnan(v) && !std::isnan(best))) {  // the first NaN wins
                best = v;
                arg = h * g.W + c;
              }
            }
          const int64_t o = (p * g.Ho + oh) * g.Wo + ow;
          op[o] = T(best);
          if (ip) ip[o] = arg;
        }
    });
  });
}

void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices, const Pool2dGeometry& g) {
  dispatch_floating(grad_x.dtype(), "max_pool2d backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* gp = grad_out.data<T>();
    const int64_t* ip = indices.data<int64_t>();
    T* xp = grad_x.data<T>();
    for_planes(g, [&](int64_t p) {
      T* xs = xp + p * g.H * g.W;
      std::fill(xs, xs + g.H * g.W, T(0));
      for (int64_t o = p * g.Ho * g.Wo; o < (p + 1) * g.Ho * g.Wo; ++o)
        xs[ip[o]] = T(static_cast<A>(xs[ip[o]]) + static_cast<A>(gp[o]));
    });
  });
}

namespace {
inline int64_t divisor(const G& g, const Window& w, int64_t oh, int64_t ow, bool count_include_pad) {
  if (!count_include_pad) return (w.h1 - w.h0) * (w.w1 - w.w0);
  // The window clipped to the padded input (always the full kernel without ceil mode).
  const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  return (std::min(hs + g.kh, g.H + g.ph) - hs) * (std::min(ws + g.kw, g.W + g.pw) - ws);
}
}  // namespace

void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dGeometry& g, bool count_include_pad) {
  dispatch_floating(x.dtype(), "avg_pool2d", [&]<typename T>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_planes(g, [&](int64_t p) {
      const T* xs = xp + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const Window w = window(g, oh, ow);
          A s = 0;
          for (int64_t h = w.h0; h < w.h1; ++h)
            for (int64_t c = w.w0; c < w.w1; ++c) s += static_cast<A>(xs[h * g.W + c]);
          op[(p * g.Ho + oh) * g.Wo + ow] = T(s / static_cast<A>(divisor(g, w, oh, ow, count_include_pad)));
        }
    });
  });
}

void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dGeometry& g, bool count_include_pad) {
  dispatch_floating(grad_x.dtype(), "avg_pool2d backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* gp = grad_out.data<T>();
    T* xp = grad_x.data<T>();
    for_planes(g, [&](int64_t p) {
      T* xs = xp + p * g.H * g.W;
      std::fill(xs, xs + g.H * g.W, T(0));
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const Window w = window(g, oh, ow);
          const A v = static_cast<A>(gp[(p * g.Ho + oh) * g.Wo + ow]) /
                      static_cast<A>(divisor(g, w, oh, ow, count_include_pad));
          for (int64_t h = w.h0; h < w.h1; ++h)
            for (int64_t c = w.w0; c < w.w1; ++c) xs[h * g.W + c] = T(static_cast<A>(xs[h * g.W + c]) + v);
        }
    });
  });
}

}  // namespace kirzl::kernels::cpu
