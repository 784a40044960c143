// Device dispatch for bias_gelu.
#include "kernels/fused_bias_gelu.h"

namespace kirzl::kernels {

void bias_gelu_forward(Tensor& y, const Tensor& x, const Tensor& bias, int64_t n) {
  if (x.device().is_cpu()) return cpu::bias_gelu_forward(y, x, bias, n);
  return cuda::bias_gelu_forward(y, x, bias, n);
}

void bias_gelu_backward(Tensor& gx, Tensor& gbias, const Tensor& g, const Tensor& x, const Tensor& bias, int64_t n) {
  if (x.device().is_cpu()) return cpu::bias_gelu_backward(gx, gbias, g, x, bias, n);
  return cuda::bias_gelu_backward(gx, gbias, g, x, bias, n);
}

}  // namespace kirzl::kernels
