// softmax and log_softmax along a dimension, with dedicated backward kernels.
#include "kernels/softmax.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  Tensor gc = g.contiguous();
  Tensor gx = empty(y.shape(), options_of(y));
  kernels::softmax_backward(gx, gc, y, dim, log);
  return gx;
}

Tensor softmax_impl(const Tensor& x, int64_t dim0, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  ops::check_floating(name, x, "x");
  const int64_t dim = ops::wrap_dim(name, dim0, x.dim(), x);
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(x.shape(), options_of(x));
  kernels::softmax(out, xc, x.dim() == 0 ? 0 : dim, log);
  if (!autograd::any_requires_grad({&x})) return out;
  Tensor y = out.detach();
  autograd::record(name, out, {x}, [y, dim, log](const autograd::GradContext& c) {
    // Not differentiable twice: the backward kernel records no graph.
    return std::vector<Tensor>{softmax_backward(c.grad().to(y.dtype()), y, y.dim() == 0 ? 0 : dim, log)};
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace kirzl
