// batch_norm: checks, batch statistics / running-stat update and autograd around the kernels.
#include "kernels/batch_norm.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// A per-channel tensor must be floating, [C] and on x's device (any floating dtype: running
// statistics are often kept in f32 for a bf16 model).
void check_channel_tensor(const Tensor& t, const char* name, const Tensor& x) {
  if (!t.defined()) return;
  ops::check_floating("batch_norm", t, name);
  ops::check_same_device("batch_norm", {&x, &t});
  KIRZL_CHECK(t.dim() == 1 && t.size(0) == x.size(1), "batch_norm: ", name, " must be [", x.size(1),
              "] (one value per channel), got ", ops::describe_all({{"input", &x}, {name, &t}}));
}

Tensor as_f64(const Tensor& t) { return t.defined() ? t.detach().to(DType::f64).contiguous() : Tensor(); }

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  ops::check_floating("batch_norm", x, "input");
  KIRZL_CHECK(x.dim() >= 2, "batch_norm: input must be [N, C, ...], got ", x.describe());
  check_channel_tensor(running_mean, "running_mean", x);
  check_channel_tensor(running_var, "running_var", x);
  check_channel_tensor(weight, "weight", x);
  check_channel_tensor(bias, "bias", x);
  KIRZL_CHECK(eps >= 0, "batch_norm: eps must be >= 0, got ", eps);
  const int64_t C = x.size(1), count = x.numel() / std::max<int64_t>(C, 1);
  Tensor xc = x.detach().contiguous();
  Tensor mean, var;
  if (training) {
    KIRZL_CHECK(count > 1, "batch_norm: expected more than 1 value per channel when training, got input ",
                x.describe());
    mean = empty({C}, {.dtype = DType::f64, .device = x.device()});
    var = empty({C}, {.dtype = DType::f64, .device = x.device()});
    kernels::batch_norm_stats(mean, var, xc);
    NoGradGuard no_grad;
    if (running_mean.defined()) {
      Tensor rm = running_mean;  // a handle: the update is in place on the caller's tensor
      rm.mul_(1.0 - momentum).add_(mean, momentum);
    }
    if (running_var.defined()) {
      Tensor rv = running_var;
      rv.mul_(1.0 - momentum).add_(mul(var, double(count) / double(count - 1)), momentum);
    }
  } else {
    KIRZL_CHECK(running_mean.defined() && running_var.defined(),
                "batch_norm: eval mode needs running_mean and running_var, got ",
                ops::describe_all({{"running_mean", &running_mean}, {"running_var", &running_var}}));
    mean = as_f64(running_mean);
    var = as_f64(running_var);
  }
  Tensor w = as_f64(weight), b = as_f64(bias);
  Tensor y = empty(x.shape(), options_of(x));
  kernels::batch_norm_forward(y, xc, mean, var, w, b, eps);
  if (autograd::any_requires_grad({&x, &weight, &bias})) {
    const DType wt = weight.defined() ? weight.dtype() : x.dtype(), bt = bias.defined() ? bias.dtype() : x.dtype();
    autograd::record("batch_norm", y, {x, weight, bias},
                     [xc, mean, var, w, eps, training, wt, bt](const autograd::GradContext& c) {
                       Tensor g = c.grad().contiguous();
                       Tensor gx, gw, gb;
                       if (c.needs(0)) gx = empty(xc.shape(), options_of(xc));
                       if (c.needs(1)) gw = empty({xc.size(1)}, {.dtype = DType::f64, .device = xc.device()});
                       if (c.needs(2)) gb = empty({xc.size(1)}, {.dtype = DType::f64, .device = xc.device()});
                       kernels::batch_norm_backward(gx, gw, gb, g, xc, mean, var, w, eps, training);
                       return std::vector<Tensor>{gx, gw.defined() ? gw.to(wt) : gw, gb.defined() ? gb.to(bt) : gb};
                     });
  }
  return y;
}

}  // namespace kirzl
