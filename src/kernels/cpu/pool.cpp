// CPU pooling: one independent [H, W] plane per (sample, channel), planes in parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
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

// All ones when b is taken over a in scan order: b is larger, or b is the first NaN (ties keep a).
template <typename A>
inline int64_t take_mask(A b, A a) {
  return -static_cast<int64_t>((b > a) | ((b != b) & (a == a)));
}

// mask all ones: x, zero: y — through the bits, so that the compiler cannot emit a jump.
template <typename A>
inline A select_bits(int64_t mask, A x, A y) {
  using U = std::conditional_t<sizeof(A) == 4, uint32_t, uint64_t>;
  U ux, uy;
  std::memcpy(&ux, &x, sizeof x);
  std::memcpy(&uy, &y, sizeof y);
  const U r = (ux & static_cast<U>(mask)) | (uy & ~static_cast<U>(mask));
  A out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

// One output row of the 2x2, stride-2, unpadded max pool: a tree of three picks per output with
// branch-free selects. On real activations (ReLU output: many ties and coin-toss comparisons)
// the branchy scan mispredicted about every other comparison and cost 40% more.
// r0, r1: the two input rows; `base`: the plane offset of r0[0], for the argmax indices.
template <typename T, typename A>
void max_pool_2x2_row(const T* __restrict r0, const T* __restrict r1, T* __restrict out, int64_t* __restrict idx,
                      int64_t Wo, int64_t base, int64_t W) {
  for (int64_t ow = 0; ow < Wo; ++ow) {
    const A a = static_cast<A>(r0[2 * ow]), b = static_cast<A>(r0[2 * ow + 1]);
    const A c = static_cast<A>(r1[2 * ow]), d = static_cast<A>(r1[2 * ow + 1]);
    const int64_t tb = take_mask(b, a), td = take_mask(d, c);
    const A top = select_bits(tb, b, a), bottom = select_bits(td, d, c);
    const int64_t tt = take_mask(bottom, top);
    out[ow] = T(select_bits(tt, bottom, top));
    const int64_t top_i = base + 2 * ow + (tb & 1), bottom_i = base + W + 2 * ow + (td & 1);
    idx[ow] = (bottom_i & tt) | (top_i & ~tt);
  }
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
    // The 2x2, stride-2, unpadded pool of most CNNs: no clipping, four loads per output.
    const bool two_by_two = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
    for_planes(g, [&](int64_t p) {
      const T* xs = xp + p * g.H * g.W;
      if (two_by_two) {
        thread_local std::vector<int64_t> scratch;  // indices nobody asked for
        if (!ip) scratch.resize(static_cast<size_t>(g.Wo));
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t o0 = (p * g.Ho + oh) * g.Wo;
          max_pool_2x2_row<T, A>(xs + 2 * oh * g.W, xs + (2 * oh + 1) * g.W, op + o0, (ip ? ip : scratch.data()) + (ip ? o0 : 0),
                                 g.Wo, 2 * oh * g.W, g.W);
        }
        return;
      }
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

void register_pool_kernels() {
  KIRZL_REGISTER_KERNEL(max_pool2d_forward, DeviceType::CPU, &max_pool2d_forward);
  KIRZL_REGISTER_KERNEL(max_pool2d_backward, DeviceType::CPU, &max_pool2d_backward);
  KIRZL_REGISTER_KERNEL(avg_pool2d_forward, DeviceType::CPU, &avg_pool2d_forward);
  KIRZL_REGISTER_KERNEL(avg_pool2d_backward, DeviceType::CPU, &avg_pool2d_backward);
}

}  // namespace kirzl::kernels::cpu
