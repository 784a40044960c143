// Device dispatch for conv2d kernels.
#include "kernels/conv.h"

namespace kirzl::kernels {

namespace {
[[noreturn]] void no_cuda(const Tensor& t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "conv2d on ", t.device().str(), ": CUDA convolution is not implemented yet (",
             t.describe(), ")");
}
}  // namespace

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g) {
  if (out.device().is_cpu()) return cpu::conv2d_forward(out, x, weight, bias, g);
  no_cuda(x);
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g) {
  if (grad_x.device().is_cpu()) return cpu::conv2d_backward_input(grad_x, grad_out, weight, g);
  no_cuda(grad_out);
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g) {
  if (grad_w.device().is_cpu()) return cpu::conv2d_backward_weight(grad_w, grad_out, x, g);
  no_cuda(grad_out);
}

}  // namespace kirzl::kernels
