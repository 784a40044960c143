// bias_gelu: bias add and tanh-GELU in one kernel, fused backward.
#include "kernels/fused_bias_gelu.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/fused.hpp"
#include "ops/op_utils.h"

namespace kirzl {

Tensor bias_gelu(const Tensor& x, const Tensor& bias) {
  const char* op = "bias_gelu";
  ops::check_floating(op, x, "x");
  ops::check_defined(op, bias, "bias");
  ops::check_same_device(op, {&x, &bias});
  const std::string all = ops::describe_all({{"x", &x}, {"bias", &bias}});
  KIRZL_CHECK(x.dim() >= 1, op, ": x must have at least one dim, got ", all);
  const int64_t n = x.size(-1);
  KIRZL_CHECK(bias.shape() == Shape{n} && bias.dtype() == x.dtype(), op,
              ": bias must be [", n, "] (the last dim of x) of x's dtype, got ", all);
  Tensor xc = x.detach().contiguous(), bc = bias.detach().contiguous();
  Tensor y = empty(x.shape(), options_of(x));
  if (x.numel() > 0) kernels::bias_gelu_forward(y, xc, bc, n);
  if (!autograd::any_requires_grad({&x, &bias})) return y;
  autograd::record(op, y, {x, bias}, [xc, bc, n](const autograd::GradContext& c) {
    // Not differentiable twice: the fused backward kernel records no graph.
    Tensor g = c.grad().to(xc.dtype()).contiguous();
    Tensor gx = c.needs(0) ? empty(xc.shape(), options_of(xc)) : Tensor();
    Tensor gb = c.needs(1) ? empty({n}, options_of(xc)) : Tensor();
    if (xc.numel() > 0) kernels::bias_gelu_backward(gx, gb, g, xc, bc, n);
    else if (gb.defined()) gb.zero_();
    return std::vector<Tensor>{gx, gb};
  });
  return y;
}

}  // namespace kirzl
