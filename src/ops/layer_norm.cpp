// layer_norm over trailing dims, fused forward and backward.
#include "kernels/layer_norm.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

void check_affine(const Tensor& x, const Tensor& p, const char* name, const Shape& normalized_shape) {
  if (!p.defined()) return;
  KIRZL_CHECK(p.shape() == normalized_shape && p.dtype() == x.dtype(), "layer_norm: ", name, " ", p.describe(),
              " must have the normalized shape ", normalized_shape.str(), " and the dtype of x ", x.describe());
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  ops::check_floating(op, x, "x");
  ops::check_same_device(op, {&x, &weight, &bias});
  const int64_t k = normalized_shape.size();
  bool trailing_match = k >= 1 && k <= x.dim();
  for (int64_t i = 0; trailing_match && i < k; ++i)
    trailing_match = x.size(x.dim() - k + i) == normalized_shape[i];
  KIRZL_CHECK(trailing_match, op, ": normalized_shape ", normalized_shape.str(),
              " must be non-empty and equal the trailing dims of x ", x.describe());
  KIRZL_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  check_affine(x, weight, "weight", normalized_shape);
  check_affine(x, bias, "bias", normalized_shape);

  const int64_t n = normalized_shape.numel();
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  Tensor xc = x.detach().contiguous();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  const DType acc = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor y = empty(x.shape(), options_of(x));
  Tensor mu = empty({m}, {.dtype = acc, .device = x.device()});
  Tensor rs = empty({m}, {.dtype = acc, .device = x.device()});
  if (x.numel() > 0) kernels::layer_norm_forward(y, mu, rs, xc, w, b, n, eps);
  if (!autograd::any_requires_grad({&x, &weight, &bias})) return y;
  autograd::record(op, y, {x, weight, bias}, [xc, w, mu, rs, n, normalized_shape](const autograd::GradContext& c) {
    // Not differentiable twice: the fused backward kernel records no graph.
    Tensor g = c.grad().to(xc.dtype()).contiguous();
    Tensor gx = c.needs(0) ? empty(xc.shape(), options_of(xc)) : Tensor();
    Tensor gw = c.needs(1) ? empty(normalized_shape, options_of(xc)) : Tensor();
    Tensor gb = c.needs(2) ? empty(normalized_shape, options_of(xc)) : Tensor();
    if (xc.numel() > 0) {
      kernels::layer_norm_backward(gx, gw, gb, g, xc, mu, rs, w, n);
    } else {
      if (gw.defined()) gw.zero_();
      if (gb.defined()) gb.zero_();
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace kirzl
