// conv2d: argument checks, output geometry and autograd around the im2col + GEMM kernels.
#include "kernels/conv.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  const char* op = "conv2d";
  ops::check_floating(op, x, "input");
  ops::check_floating(op, weight, "weight");
  ops::check_same_device(op, {&x, &weight, &bias});
  auto all = [&] { return ops::describe_all({{"input", &x}, {"weight", &weight}}); };
  KIRZL_CHECK(x.dtype() == weight.dtype(), op, ": expected same dtype, got ", all());
  KIRZL_CHECK(x.dim() == 4 || x.dim() == 3, op, ": input must be [N, C, H, W] or [C, H, W], got ", x.describe());
  KIRZL_CHECK(weight.dim() == 4, op, ": weight must be [C_out, C_in / groups, kH, kW], got ", weight.describe());
  KIRZL_CHECK(o.groups >= 1, op, ": groups must be >= 1, got ", o.groups);
  for (int i = 0; i < 2; ++i)
    KIRZL_CHECK(o.stride[i] >= 1 && o.dilation[i] >= 1 && o.padding[i] >= 0, op,
                ": expected stride >= 1, dilation >= 1 and padding >= 0, got stride [", o.stride[0], ", ", o.stride[1],
                "], padding [", o.padding[0], ", ", o.padding[1], "], dilation [", o.dilation[0], ", ", o.dilation[1],
                "]");
  const bool batched = x.dim() == 4;
  Tensor x4 = batched ? x : x.unsqueeze(0);
  const int64_t C = x4.size(1), Cout = weight.size(0);
  KIRZL_CHECK(C % o.groups == 0 && Cout % o.groups == 0, op, ": groups = ", o.groups,
              " must divide both the input channels (", C, ") and the output channels (", Cout, ") (", all(), ")");
  KIRZL_CHECK(weight.size(1) * o.groups == C, op, ": input has ", C, " channels but weight expects ",
              weight.size(1) * o.groups, " (weight.size(1) = ", weight.size(1), " x groups = ", o.groups, ") (", all(),
              ")");
  if (bias.defined()) {
    KIRZL_CHECK(bias.dtype() == x.dtype(), op, ": expected same dtype, got ",
                ops::describe_all({{"input", &x}, {"bias", &bias}}));
    KIRZL_CHECK(bias.dim() == 1 && bias.size(0) == Cout, op, ": bias must be [", Cout, "] (",
                ops::describe_all({{"weight", &weight}, {"bias", &bias}}), ")");
  }
  kernels::Conv2dGeometry g{};
  g.N = x4.size(0);
  g.C = C;
  g.H = x4.size(2);
  g.W = x4.size(3);
  g.Cout = Cout;
  g.kh = weight.size(2);
  g.kw = weight.size(3);
  g.sh = o.stride[0];
  g.sw = o.stride[1];
  g.ph = o.padding[0];
  g.pw = o.padding[1];
  g.dh = o.dilation[0];
  g.dw = o.dilation[1];
  g.groups = o.groups;
  const int64_t ext_h = g.dh * (g.kh - 1) + 1, ext_w = g.dw * (g.kw - 1) + 1;
  KIRZL_CHECK(ext_h <= g.H + 2 * g.ph && ext_w <= g.W + 2 * g.pw, op, ": the (dilated) kernel ", ext_h, "x", ext_w,
              " is larger than the padded input ", g.H + 2 * g.ph, "x", g.W + 2 * g.pw, " (", all(), ")");
  g.Ho = (g.H + 2 * g.ph - ext_h) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - ext_w) / g.sw + 1;

  Tensor xc = x4.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor out = empty({g.N, Cout, g.Ho, g.Wo}, options_of(x));
  kernels::conv2d_forward(out, xc, wc, bc, g);
  if (autograd::any_requires_grad({&x4, &weight, &bias})) {
    autograd::record(op, out, {x4, weight, bias}, [xc, wc, g](const autograd::GradContext& c) {
      Tensor go = c.grad().contiguous();
      Tensor gx, gw, gb;
      if (c.needs(0)) {
        gx = empty(xc.shape(), options_of(xc));
        kernels::conv2d_backward_input(gx, go, wc, g);
      }
      if (c.needs(1)) {
        gw = empty(wc.shape(), options_of(wc));
        kernels::conv2d_backward_weight(gw, go, xc, g);
      }
      if (c.needs(2)) gb = sum(go, {0, 2, 3});
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return batched ? out : out.squeeze(0);
}

}  // namespace kirzl
