// residual_layer_norm: residual add and layer norm in one pass, fused backward.
#include "kernels/fused_layer_norm.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/fused.hpp"
#include "ops/op_utils.h"

namespace kirzl {

ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                            const Tensor& bias, double eps) {
  const char* op = "residual_layer_norm";
  ops::check_floating(op, x, "x");
  ops::check_defined(op, residual, "residual");
  ops::check_same_device(op, {&x, &residual, &weight, &bias});
  const std::string all =
      ops::describe_all({{"x", &x}, {"residual", &residual}, {"weight", &weight}, {"bias", &bias}});
  KIRZL_CHECK(x.dim() >= 1, op, ": x must have at least one dim, got ", all);
  KIRZL_CHECK(residual.shape() == x.shape() && residual.dtype() == x.dtype(), op,
              ": residual must have the shape and dtype of x, got ", all);
  const int64_t n = x.size(-1);
  for (const Tensor* p : {&weight, &bias})
    KIRZL_CHECK(!p->defined() || (p->shape() == Shape{n} && p->dtype() == x.dtype()), op,
                ": weight and bias must be [", n, "] (the last dim of x) of x's dtype, got ", all);
  KIRZL_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);

  const int64_t m = n == 0 ? 0 : x.numel() / n;
  Tensor xc = x.detach().contiguous(), rc = residual.detach().contiguous();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  const DType acc = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  ResidualLayerNormResult r{empty(x.shape(), options_of(x)), empty(x.shape(), options_of(x))};
  Tensor mu = empty({m}, {.dtype = acc, .device = x.device()});
  Tensor rs = empty({m}, {.dtype = acc, .device = x.device()});
  if (x.numel() > 0) kernels::residual_layer_norm_forward(r.sum, r.normed, mu, rs, xc, rc, w, b, n, eps);
  if (!autograd::any_requires_grad({&x, &residual, &weight, &bias})) return r;
  Tensor saved_sum = r.sum.detach();
  autograd::record(op, {&r.sum, &r.normed}, {x, residual, weight, bias},
                   [saved_sum, w, mu, rs, n](const autograd::GradContext& c) {
                     // Not differentiable twice: the fused backward kernel records no graph.
                     const DType dt = saved_sum.dtype();
                     Tensor g_sum = c.grad(0).defined() ? c.grad(0).to(dt).contiguous() : Tensor();
                     Tensor g_y = c.grad(1).defined() ? c.grad(1).to(dt).contiguous() : zeros_like(saved_sum);
                     const bool want_x = c.needs(0) || c.needs(1);
                     Tensor gx = want_x ? empty(saved_sum.shape(), options_of(saved_sum)) : Tensor();
                     Tensor gw = c.needs(2) ? empty({n}, options_of(saved_sum)) : Tensor();
                     Tensor gb = c.needs(3) ? empty({n}, options_of(saved_sum)) : Tensor();
                     if (saved_sum.numel() > 0) {
                       kernels::residual_layer_norm_backward(gx, gw, gb, g_y, g_sum, saved_sum, mu, rs, w, n);
                     } else {
                       if (gw.defined()) gw.zero_();
                       if (gb.defined()) gb.zero_();
                     }
                     // d sum / d x = d sum / d residual = identity: both get the same tensor.
                     return std::vector<Tensor>{c.needs(0) ? gx : Tensor(), c.needs(1) ? gx : Tensor(), gw, gb};
                   });
  return r;
}

}  // namespace kirzl
