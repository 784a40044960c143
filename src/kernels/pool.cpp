// Device dispatch for pooling kernels.
#include "kernels/pool.h"

namespace kirzl::kernels {

namespace {
[[noreturn]] void no_cuda(const char* op, const Tensor& t) {
  KIRZL_FAIL(ErrorCode::Unsupported, op, " on ", t.device().str(), ": CUDA pooling is not implemented yet (",
             t.describe(), ")");
}
}  // namespace

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dGeometry& g) {
  if (x.device().is_cpu()) return cpu::max_pool2d_forward(out, indices, x, g);
  no_cuda("max_pool2d", x);
}
void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices, const Pool2dGeometry& g) {
  if (grad_x.device().is_cpu()) return cpu::max_pool2d_backward(grad_x, grad_out, indices, g);
  no_cuda("max_pool2d backward", grad_out);
}
void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dGeometry& g, bool count_include_pad) {
  if (x.device().is_cpu()) return cpu::avg_pool2d_forward(out, x, g, count_include_pad);
  no_cuda("avg_pool2d", x);
}
void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dGeometry& g, bool count_include_pad) {
  if (grad_x.device().is_cpu()) return cpu::avg_pool2d_backward(grad_x, grad_out, g, count_include_pad);
  no_cuda("avg_pool2d backward", grad_out);
}

}  // namespace kirzl::kernels
