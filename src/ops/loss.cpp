// Losses: cross_entropy (fused with log_softmax) and mse_loss.
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cross_entropy.h"
#include "kernels/index_check.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/nn.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Expected target shape: logits' shape without the class dim (dim 1; a [C] input has no batch).
Shape target_shape(const Tensor& logits) {
  Shape s = logits.shape();
  s.erase(logits.dim() == 1 ? 0 : 1);
  return s;
}

// Rejects a target outside [0, C) that is not ignore_index; returns the number not ignored.
// On the targets' device; on CUDA thrown at the next synchronising point unless
// cuda::sync_index_checks(), with the count left on the device (Note [device index check]).
kernels::ValidCount check_targets(const Tensor& targets, int64_t classes, int64_t ignore_index) {
  return kernels::check_op_indices(targets, {.op = index_error::IndexOp::CrossEntropy, .limit = classes,
                                             .has_ignore = true, .ignore = ignore_index});
}

}  // namespace

// Note [cross_entropy mean of nothing]: with Reduction::Mean and every target ignored, the loss
// is 0/0 = NaN, as in PyTorch; its gradient is zero.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& o) {
  const char* op = "cross_entropy";
  ops::check_floating(op, logits, "logits");
  ops::check_defined(op, targets, "targets");
  ops::check_same_device(op, {&logits, &targets});
  KIRZL_CHECK(targets.dtype() == DType::i32 || targets.dtype() == DType::i64, op,
              ": targets must be class indices of dtype i32 or i64, got ", targets.describe());
  KIRZL_CHECK(logits.dim() >= 1, op, ": logits must be [N, C] or [N, C, d1, ...] (or [C]), got ", logits.describe());
  const Shape tshape = target_shape(logits);
  KIRZL_CHECK(targets.shape() == tshape, op, ": targets ", targets.describe(), " do not match logits ",
              logits.describe(), " (expected targets of shape ", tshape.str(), ")");
  KIRZL_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
              o.label_smoothing);
  const int64_t classes = logits.dim() == 1 ? logits.size(0) : logits.size(1);
  KIRZL_CHECK(classes > 0 || tshape.numel() == 0, op, ": logits ", logits.describe(), " have no classes");
  Tensor x = logits.detach().contiguous();
  Tensor tg = targets.detach().contiguous();
  const kernels::ValidCount count = check_targets(tg, classes, o.ignore_index);
  const DType acc = logits.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor losses = empty(tshape, {.dtype = acc, .device = logits.device()});
  Tensor lse = empty(tshape, {.dtype = acc, .device = logits.device()});
  if (tshape.numel() > 0) kernels::cross_entropy_forward(losses, lse, x, tg, o.ignore_index, o.label_smoothing);

  Tensor out;
  double scale = 1.0;
  Tensor count_dev;  // the Mean's divisor when the count stays on the device (deferred check)
  {
    NoGradGuard ng;
    switch (o.reduction) {
      case Reduction::None: out = losses.to(logits.dtype()); break;
      case Reduction::Sum: out = sum(losses).to(logits.dtype()); break;
      case Reduction::Mean:
        // See Note [cross_entropy mean of nothing]. On the device 0 / 0 is that NaN too (the
        // losses of ignored rows are 0).
        if (count.device.defined()) {
          count_dev = count.device.to(acc);
          out = div(sum(losses), count_dev).to(logits.dtype());
          break;
        }
        scale = count.host == 0 ? std::numeric_limits<double>::quiet_NaN() : 1.0 / static_cast<double>(count.host);
        out = (count.host == 0 ? full({}, scale, {.dtype = acc, .device = logits.device()}) : mul(sum(losses), scale))
                  .to(logits.dtype());
        break;
    }
  }
  if (!autograd::any_requires_grad({&logits})) return out;
  const int64_t ignore = o.ignore_index;
  const double smoothing = o.label_smoothing;
  autograd::record(op, out, {logits}, [x, tg, lse, scale, count_dev, ignore, smoothing](const autograd::GradContext& c) {
    // Not differentiable twice: the fused backward kernel records no graph. With the count on
    // the device the gradient is divided by it here; with none counted every row is ignored and
    // the kernel writes zeros without reading the (infinite) quotient.
    Tensor g = (count_dev.defined() ? div(c.grad(), count_dev) : c.grad()).to(x.dtype()).contiguous();
    Tensor gx = empty(x.shape(), options_of(x));
    if (x.numel() > 0)
      kernels::cross_entropy_backward(gx, x, tg, lse, g, std::isnan(scale) ? 0.0 : scale, ignore, smoothing);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  ops::check_floating("mse_loss", input, "input");
  ops::check_floating("mse_loss", target, "target");
  ops::check_same_device("mse_loss", {&input, &target});
  Tensor d = sub(input, target);
  Tensor sq = mul(d, d);
  switch (reduction) {
    case Reduction::None: return sq;
    case Reduction::Sum: return sum(sq);
    case Reduction::Mean: break;
  }
  return mean(sq);
}

}  // namespace kirzl
