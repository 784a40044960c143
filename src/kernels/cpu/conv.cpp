// CPU conv2d: im2col per sample, then one GEMM per group (kernels/cpu/gemm.h). Samples run in
// parallel, each thread with its own column buffer; Eigen threads inside when there is one sample.
#include <algorithm>
#include <mutex>
#include <vector>

#include "kernels/conv.h"
#include "kernels/copy.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"

namespace kirzl::kernels::cpu {

namespace {

using G = Conv2dGeometry;

// A 1x1 kernel with unit stride and no padding: the sample [C, H*W] is its own column matrix.
bool pointwise(const G& g) { return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0; }

// Visits the column matrix of one sample row by row: one call per (c, ki, kj, oh) with the column
// row segment `ci` (Wo entries), the input row `xi` (-1 where the window is in vertical padding)
// and the output columns [lo, hi) whose input column iw = iw0 + ow * sw lies inside the row.
// Note [row-wise im2col]: per-element visiting with bounds checks cost as much as the GEMMs for
// the small convolutions of the examples; whole rows turn the interior into a copy.
template <typename F>
void for_each_patch_row(const G& g, F&& f) {
  const int64_t L = g.Ho * g.Wo;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t row = ((c * g.kh + ki) * g.kw + kj) * L;
        const int64_t iw0 = kj * g.dw - g.pw;
        // ow in [lo, hi) <=> 0 <= iw0 + ow * sw < W.
        const int64_t lo = std::clamp<int64_t>(iw0 >= 0 ? 0 : (-iw0 + g.sw - 1) / g.sw, 0, g.Wo);
        const int64_t hi = std::clamp<int64_t>(g.W - iw0 <= 0 ? 0 : (g.W - iw0 + g.sw - 1) / g.sw, lo, g.Wo);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          const int64_t xi = ih >= 0 && ih < g.H ? (c * g.H + ih) * g.W : int64_t{-1};
          f(row + oh * g.Wo, xi, iw0, lo, hi);
        }
      }
}

// col [C*kh*kw, Ho*Wo] from x [C, H, W].
template <typename T>
void im2col(const T* x, const G& g, T* col) {
  const int64_t sw = g.sw, Wo = g.Wo;
  for_each_patch_row(g, [&](int64_t ci, int64_t xi, int64_t iw0, int64_t lo, int64_t hi) {
    T* dst = col + ci;
    if (xi < 0) return std::fill(dst, dst + Wo, T(0));
    std::fill(dst, dst + lo, T(0));
    const T* src = x + xi + iw0;
    if (sw == 1)
      std::copy(src + lo, src + hi, dst + lo);
    else
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw];
    std::fill(dst + hi, dst + Wo, T(0));
  });
}

// Adjoint of im2col: x [C, H, W] += scattered col.
template <typename T>
void col2im(const T* col, const G& g, T* x) {
  const int64_t sw = g.sw;
  for_each_patch_row(g, [&](int64_t ci, int64_t xi, int64_t iw0, int64_t lo, int64_t hi) {
    if (xi < 0) return;
    const T* src = col + ci;
    T* dst = x + xi + iw0;
    for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw] += src[ow];
  });
}

struct Dims {
  int64_t Og, Kg, L, col_size, x_size;
  explicit Dims(const G& g)
      : Og(g.Cout / g.groups), Kg(g.C / g.groups * g.kh * g.kw), L(g.Ho * g.Wo), col_size(g.C * g.kh * g.kw * L),
        x_size(g.C * g.H * g.W) {}
};

template <typename T>
void forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, const G& g) {
  const Dims d(g);
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* op = out.data<T>();
  const bool direct = pointwise(g);
  parallel_for(g.N, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> col(direct ? 0 : d.col_size);
    for (int64_t n = begin; n < end; ++n) {
      const T* cols = xp + n * d.x_size;
      if (!direct) {
        im2col(cols, g, col.data());
        cols = col.data();
      }
      T* on = op + n * g.Cout * d.L;
      if (bp)
        for (int64_t o = 0; o < g.Cout; ++o) std::fill(on + o * d.L, on + (o + 1) * d.L, bp[o]);
      for (int64_t gi = 0; gi < g.groups; ++gi)
        gemm_raw<T>({on + gi * d.Og * d.L, d.Og, d.L, d.L, 1}, {wp + gi * d.Og * d.Kg, d.Og, d.Kg, d.Kg, 1},
                    {cols + gi * d.Kg * d.L, d.Kg, d.L, d.L, 1}, T(1), bp ? T(1) : T(0));
    }
  });
}

template <typename T>
void backward_input(Tensor& gx, const Tensor& gout, const Tensor& w, const G& g) {
  const Dims d(g);
  const T* gp = gout.data<T>();
  const T* wp = w.data<T>();
  T* xp = gx.data<T>();
  const bool direct = pointwise(g);
  parallel_for(g.N, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> col(direct ? 0 : d.col_size);
    for (int64_t n = begin; n < end; ++n) {
      T* xn = xp + n * d.x_size;
      T* cols = direct ? xn : col.data();
      const T* gn = gp + n * g.Cout * d.L;
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        MatRef<const T> wg{wp + gi * d.Og * d.Kg, d.Og, d.Kg, d.Kg, 1};
        gemm_raw<T>({cols + gi * d.Kg * d.L, d.Kg, d.L, d.L, 1}, wg.t(), {gn + gi * d.Og * d.L, d.Og, d.L, d.L, 1},
                    T(1), T(0));
      }
      if (!direct) {
        std::fill(xn, xn + d.x_size, T(0));
        col2im(col.data(), g, xn);
      }
    }
  });
}

template <typename T>
void backward_weight(Tensor& gw, const Tensor& gout, const Tensor& x, const G& g) {
  const Dims d(g);
  const T* gp = gout.data<T>();
  const T* xp = x.data<T>();
  T* wp = gw.data<T>();
  const int64_t w_size = g.Cout * d.Kg;
  std::fill(wp, wp + w_size, T(0));
  const bool direct = pointwise(g);
  std::mutex mu;
  // Each thread sums its samples into a private buffer, then adds it to grad_w once.
  parallel_for(g.N, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> col(direct ? 0 : d.col_size), acc(w_size, T(0));
    for (int64_t n = begin; n < end; ++n) {
      const T* cols = xp + n * d.x_size;
      if (!direct) {
        im2col(cols, g, col.data());
        cols = col.data();
      }
      const T* gn = gp + n * g.Cout * d.L;
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        MatRef<const T> cg{cols + gi * d.Kg * d.L, d.Kg, d.L, d.L, 1};
        gemm_raw<T>({acc.data() + gi * d.Og * d.Kg, d.Og, d.Kg, d.Kg, 1}, {gn + gi * d.Og * d.L, d.Og, d.L, d.L, 1},
                    cg.t(), T(1), T(1));
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    for (int64_t i = 0; i < w_size; ++i) wp[i] += acc[i];
  });
}

bool is_16bit(DType t) { return t == DType::bf16 || t == DType::f16; }

// Runs f<float> or f<double>; 16-bit tensors go through f32 copies (see widen_to_f32).
template <typename F>
void by_dtype(DType dt, const char* op, F&& f) {
  if (dt == DType::f32) return f.template operator()<float>();
  if (dt == DType::f64) return f.template operator()<double>();
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(dt));
}

Tensor empty_f32(const Tensor& like) { return empty(like.shape(), {.dtype = DType::f32, .device = like.device()}); }

}  // namespace

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g) {
  if (is_16bit(out.dtype())) {
    Tensor o32 = empty_f32(out);
    cpu::conv2d_forward(o32, widen_to_f32(x), widen_to_f32(weight), bias.defined() ? widen_to_f32(bias) : Tensor(), g);
    return kernels::copy(out, o32);
  }
  by_dtype(out.dtype(), "conv2d", [&]<typename T>() { forward<T>(out, x, weight, bias, g); });
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g) {
  if (is_16bit(grad_x.dtype())) {
    Tensor gx32 = empty_f32(grad_x);
    cpu::conv2d_backward_input(gx32, widen_to_f32(grad_out), widen_to_f32(weight), g);
    return kernels::copy(grad_x, gx32);
  }
  by_dtype(grad_x.dtype(), "conv2d backward", [&]<typename T>() { backward_input<T>(grad_x, grad_out, weight, g); });
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g) {
  if (is_16bit(grad_w.dtype())) {
    Tensor gw32 = empty_f32(grad_w);
    cpu::conv2d_backward_weight(gw32, widen_to_f32(grad_out), widen_to_f32(x), g);
    return kernels::copy(grad_w, gw32);
  }
  by_dtype(grad_w.dtype(), "conv2d backward", [&]<typename T>() { backward_weight<T>(grad_w, grad_out, x, g); });
}

void register_conv_kernels() {
  KIRZL_REGISTER_KERNEL(conv2d_forward, DeviceType::CPU, &conv2d_forward);
  KIRZL_REGISTER_KERNEL(conv2d_backward_input, DeviceType::CPU, &conv2d_backward_input);
  KIRZL_REGISTER_KERNEL(conv2d_backward_weight, DeviceType::CPU, &conv2d_backward_weight);
}

}  // namespace kirzl::kernels::cpu
