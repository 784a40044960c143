// Device dispatch for conv2d kernels.
#include "kernels/conv.h"

namespace kirzl::kernels {

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g) {
  if (out.device().is_cpu()) return cpu::conv2d_forward(out, x, weight, bias, g);
  return cuda::conv2d_forward(out, x, weight, bias, g);
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g) {
  if (grad_x.device().is_cpu()) return cpu::conv2d_backward_input(grad_x, grad_out, weight, g);
  return cuda::conv2d_backward_input(grad_x, grad_out, weight, g);
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g) {
  if (grad_w.device().is_cpu()) return cpu::conv2d_backward_weight(grad_w, grad_out, x, g);
  return cuda::conv2d_backward_weight(grad_w, grad_out, x, g);
}

}  // namespace kirzl::kernels
