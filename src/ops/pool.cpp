// max_pool2d / avg_pool2d: argument checks, output geometry and autograd around the kernels.
#include "kernels/pool.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Checks x and the options; returns the geometry over N*C planes of a contiguous [N, C, H, W] x.
kernels::Pool2dGeometry geometry(const char* op, const Tensor& x, const Pool2dOptions& o) {
  ops::check_floating(op, x, "input");
  KIRZL_CHECK(x.dim() == 4 || x.dim() == 3, op, ": input must be [N, C, H, W] or [C, H, W], got ", x.describe());
  kernels::Pool2dGeometry g{};
  g.H = x.size(-2);
  g.W = x.size(-1);
  g.planes = x.numel() / std::max<int64_t>(g.H * g.W, 1);
  g.kh = o.kernel_size[0];
  g.kw = o.kernel_size[1];
  g.sh = o.stride[0] == 0 ? g.kh : o.stride[0];
  g.sw = o.stride[1] == 0 ? g.kw : o.stride[1];
  g.ph = o.padding[0];
  g.pw = o.padding[1];
  KIRZL_CHECK(g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1, op, ": expected kernel_size >= 1 and stride >= 1 (0 = kernel), got kernel [",
              g.kh, ", ", g.kw, "], stride [", o.stride[0], ", ", o.stride[1], "]");
  // Every window must overlap the input, as in PyTorch.
  KIRZL_CHECK(g.ph >= 0 && g.pw >= 0 && 2 * g.ph <= g.kh && 2 * g.pw <= g.kw, op,
              ": padding must be between 0 and half the kernel size, got padding [", g.ph, ", ", g.pw,
              "] for kernel [", g.kh, ", ", g.kw, "]");
  KIRZL_CHECK(g.kh <= g.H + 2 * g.ph && g.kw <= g.W + 2 * g.pw, op, ": kernel ", g.kh, "x", g.kw,
              " is larger than the padded input ", g.H + 2 * g.ph, "x", g.W + 2 * g.pw, " (input ", x.describe(), ")");
  g.Ho = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

Shape out_shape(const Tensor& x, const kernels::Pool2dGeometry& g) {
  Shape s = x.shape();
  s[s.size() - 2] = g.Ho;
  s[s.size() - 1] = g.Wo;
  return s;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const kernels::Pool2dGeometry g = geometry("max_pool2d", x, options);
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(out_shape(x, g), options_of(x));
  const bool grad = autograd::any_requires_grad({&x});
  Tensor indices = grad ? empty(out.shape(), {.dtype = DType::i64, .device = x.device()}) : Tensor();
  kernels::max_pool2d_forward(out, indices, xc, g);
  if (grad) {
    Shape xs = x.shape();
    autograd::record("max_pool2d", out, {x}, [indices, xs, g](const autograd::GradContext& c) {
      Tensor gx = empty(xs, options_of(c.grad()));
      kernels::max_pool2d_backward(gx, c.grad().contiguous(), indices, g);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const kernels::Pool2dGeometry g = geometry("avg_pool2d", x, options);
  Tensor out = empty(out_shape(x, g), options_of(x));
  kernels::avg_pool2d_forward(out, x.detach().contiguous(), g, options.count_include_pad);
  if (autograd::any_requires_grad({&x})) {
    Shape xs = x.shape();
    const bool include_pad = options.count_include_pad;
    autograd::record("avg_pool2d", out, {x}, [xs, g, include_pad](const autograd::GradContext& c) {
      Tensor gx = empty(xs, options_of(c.grad()));
      kernels::avg_pool2d_backward(gx, c.grad().contiguous(), g, include_pad);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

}  // namespace kirzl
