// Device dispatch for softmax kernels.
#include "kernels/softmax.h"

namespace kirzl::kernels {

void softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (x.device().is_cpu()) return cpu::softmax(out, x, dim, log);
  return cuda::softmax(out, x, dim, log);
}

void softmax_backward(Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  if (y.device().is_cpu()) return cpu::softmax_backward(gx, g, y, dim, log);
  return cuda::softmax_backward(gx, g, y, dim, log);
}

}  // namespace kirzl::kernels
