// linear_bias_gelu and gelu_mlp: GPT-2's MLP with the bias, GELU and bias gradients in the
// epilogues of its GEMMs where the device has those kernels (CUDA: Note [GEMM epilogues]), and
// the reference composition of linear, bias_gelu and linear elsewhere.
#include "kernels/fused_bias_gelu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/fused.hpp"
#include "kirzl/ops/linalg.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// t [..., k] as [rows, k] (explicit rows: reshape cannot infer -1 when k == 0).
Tensor as_rows(const Tensor& t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) rows *= t.size(d);
  return t.reshape({rows, t.size(-1)});
}

// Checks a linear layer's operands: x [..., K], weight [N, K], bias [N], one floating dtype and
// device. `layer` names the layer in errors ("" for linear_bias_gelu itself).
void check_layer(const char* op, const char* layer, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::string w = std::string(layer) + "weight", b = std::string(layer) + "bias";
  ops::check_floating(op, x, "x");
  ops::check_defined(op, weight, w.c_str());
  ops::check_defined(op, bias, b.c_str());
  ops::check_same_device(op, {&x, &weight, &bias});
  const std::string all = ops::describe_all({{"x", &x}, {w.c_str(), &weight}, {b.c_str(), &bias}});
  KIRZL_CHECK(weight.dtype() == x.dtype() && bias.dtype() == x.dtype(), op, ": expected one dtype, got ", all);
  KIRZL_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1), op, ": expected x [..., K] and ", w,
              " [N, K], got ", all);
  KIRZL_CHECK(bias.shape() == Shape{weight.size(0)}, op, ": expected ", b, " [", weight.size(0), "], got ", all);
}

// Whether x's device runs the epilogue kernels (CUDA) and they are enabled (KIRZL_GEMM_EPILOGUES);
// otherwise the ops compose.
bool has_epilogues(const Tensor& x) {
  const DeviceType d = x.device().type();
  return kernels::gemm_epilogues_enabled() && kernels::gemm_bias_gelu.has_kernel(d) &&
         kernels::gemm_dgelu_bgrad.has_kernel(d) &&
         kernels::gemm_bgradb.has_kernel(d);
}

Shape with_last(const Tensor& x, int64_t n) {
  Shape s = x.shape();
  s[s.size() - 1] = n;
  return s;
}

}  // namespace

Tensor linear_bias_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear_bias_gelu";
  check_layer(op, "", x, weight, bias);
  if (!has_epilogues(x)) return bias_gelu(linear(x, weight), bias);
  Tensor x2 = as_rows(x);
  const int64_t M = x2.size(0), N = weight.size(0);
  Tensor xd = x2.detach().contiguous(), wd = weight.detach().contiguous(), bd = bias.detach().contiguous();
  Tensor y = empty({M, N}, options_of(x)), pre = empty({M, N}, options_of(x));
  if (M > 0 && N > 0) kernels::gemm_bias_gelu(y, pre, xd, wd, bd);
  if (autograd::any_requires_grad({&x2, &weight, &bias})) {
    autograd::record(op, y, {x2, weight, bias}, [xd, wd, pre, N](const autograd::GradContext& c) {
      // Not differentiable twice: the backward records no graph. Alone, this op's output gradient
      // arrives already computed (no GEMM of ours produces it), so the GELU's derivative and the
      // bias gradient are one elementwise pass over it (bias_gelu's backward kernel at h = pre);
      // gelu_mlp instead puts them into the epilogue of the GEMM that produces it.
      Tensor g = c.grad().detach().to(pre.dtype()).contiguous();
      Tensor gpre = empty(pre.shape(), options_of(pre));
      Tensor gb = empty({N}, options_of(pre));
      if (pre.numel() > 0) kernels::bias_gelu_backward(gpre, gb, g, pre, zeros({N}, options_of(pre)), N);
      else gb.zero_();
      Tensor gx, gw;
      if (c.needs(0)) gx = matmul(gpre, wd);
      if (c.needs(1)) gw = matmul(gpre.t(), xd);
      return std::vector<Tensor>{gx, gw, c.needs(2) ? gb : Tensor()};
    });
  }
  return y.view(with_last(x, N));
}

Tensor gelu_mlp(const Tensor& x, const Tensor& fc_weight, const Tensor& fc_bias, const Tensor& proj_weight,
                const Tensor& proj_bias) {
  const char* op = "gelu_mlp";
  check_layer(op, "fc_", x, fc_weight, fc_bias);
  ops::check_defined(op, proj_weight, "proj_weight");
  ops::check_defined(op, proj_bias, "proj_bias");
  ops::check_same_device(op, {&x, &proj_weight, &proj_bias});
  const std::string all = ops::describe_all(
      {{"fc_weight", &fc_weight}, {"proj_weight", &proj_weight}, {"proj_bias", &proj_bias}});
  KIRZL_CHECK(proj_weight.dtype() == x.dtype() && proj_bias.dtype() == x.dtype(), op, ": expected x's dtype ",
              dtype_name(x.dtype()), ", got ", all);
  KIRZL_CHECK(proj_weight.dim() == 2 && proj_weight.size(1) == fc_weight.size(0), op, ": expected proj_weight [C_out, ",
              fc_weight.size(0), "] (fc_weight's rows), got ", all);
  KIRZL_CHECK(proj_bias.shape() == Shape{proj_weight.size(0)}, op, ": expected proj_bias [", proj_weight.size(0),
              "], got ", all);
  if (!has_epilogues(x)) return linear(linear_bias_gelu(x, fc_weight, fc_bias), proj_weight, proj_bias);

  Tensor x2 = as_rows(x);
  const int64_t M = x2.size(0), H = fc_weight.size(0), C = proj_weight.size(0);
  Tensor xd = x2.detach().contiguous(), fw = fc_weight.detach().contiguous(), fb = fc_bias.detach().contiguous();
  Tensor pw = proj_weight.detach().contiguous(), pb = proj_bias.detach().contiguous();
  Tensor h = empty({M, H}, options_of(x)), pre = empty({M, H}, options_of(x));
  Tensor out = empty({M, C}, options_of(x));
  if (M > 0 && H > 0) kernels::gemm_bias_gelu(h, pre, xd, fw, fb);
  if (M > 0 && C > 0) kernels::gemm_bias(out, h, pw, pb);
  if (autograd::any_requires_grad({&x2, &fc_weight, &fc_bias, &proj_weight, &proj_bias})) {
    autograd::record(op, out, {x2, fc_weight, fc_bias, proj_weight, proj_bias},
                     [xd, fw, pw, h, pre, M, H, C](const autograd::GradContext& c) {
      // Not differentiable twice: the backward records no graph. See Note [GEMM epilogues].
      Tensor g = c.grad().detach().to(h.dtype()).contiguous();
      const TensorOptions o = options_of(h);
      Tensor gx, gfw, gfb, gpw, gpb;
      if (c.needs(3) || c.needs(4)) {  // c_proj: weight and bias gradients in one GEMM (BGRADB)
        gpw = empty({C, H}, o);
        gpb = empty({C}, o);
        if (M > 0 && C > 0 && H > 0) {
          kernels::gemm_bgradb(gpw, gpb, g, h);
        } else {  // an empty product: gw is zero, gb the column sums of g (zero without rows)
          gpw.zero_();
          gpb = sum(g, {0}).contiguous();
        }
      }
      if (c.needs(0) || c.needs(1) || c.needs(2)) {
        // The GELU's input gradient and c_fc's bias gradient in the epilogue of the GEMM that
        // turns c_proj's output gradient into the GELU's (DGELU_BGRAD).
        Tensor gpre = empty({M, H}, o);
        gfb = empty({H}, o);
        if (M > 0 && H > 0 && C > 0) {
          kernels::gemm_dgelu_bgrad(gpre, gfb, g, pw, pre);
        } else {
          gpre.zero_();
          gfb.zero_();
        }
        if (c.needs(0)) gx = matmul(gpre, fw);
        if (c.needs(1)) gfw = matmul(gpre.t(), xd);
      }
      return std::vector<Tensor>{gx, gfw, c.needs(2) ? gfb : Tensor(), c.needs(3) ? gpw : Tensor(),
                                 c.needs(4) ? gpb : Tensor()};
    });
  }
  return out.view(with_last(x, C));
}

}  // namespace kirzl
