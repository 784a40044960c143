// Device dispatch for pooling kernels.
#include "kernels/pool.h"

namespace kirzl::kernels {

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dGeometry& g) {
  if (x.device().is_cpu()) return cpu::max_pool2d_forward(out, indices, x, g);
  return cuda::max_pool2d_forward(out, indices, x, g);
}
void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices, const Pool2dGeometry& g) {
  if (grad_x.device().is_cpu()) return cpu::max_pool2d_backward(grad_x, grad_out, indices, g);
  return cuda::max_pool2d_backward(grad_x, grad_out, indices, g);
}
void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dGeometry& g, bool count_include_pad) {
  if (x.device().is_cpu()) return cpu::avg_pool2d_forward(out, x, g, count_include_pad);
  return cuda::avg_pool2d_forward(out, x, g, count_include_pad);
}
void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dGeometry& g, bool count_include_pad) {
  if (grad_x.device().is_cpu()) return cpu::avg_pool2d_backward(grad_x, grad_out, g, count_include_pad);
  return cuda::avg_pool2d_backward(grad_x, grad_out, g, count_include_pad);
}

}  // namespace kirzl::kernels
