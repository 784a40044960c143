// Device dispatch for residual_layer_norm.
#include "kernels/fused_layer_norm.h"

namespace kirzl::kernels {

void residual_layer_norm_forward(Tensor& sum, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                 const Tensor& residual, const Tensor& weight, const Tensor& bias, int64_t n,
                                 double eps) {
  if (x.device().is_cpu()) return cpu::residual_layer_norm_forward(sum, y, mean, rstd, x, residual, weight, bias, n, eps);
  return cuda::residual_layer_norm_forward(sum, y, mean, rstd, x, residual, weight, bias, n, eps);
}

void residual_layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g_y, const Tensor& g_sum,
                                  const Tensor& sum, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                  int64_t n) {
  if (sum.device().is_cpu()) return cpu::residual_layer_norm_backward(gx, gw, gb, g_y, g_sum, sum, mean, rstd, weight, n);
  return cuda::residual_layer_norm_backward(gx, gw, gb, g_y, g_sum, sum, mean, rstd, weight, n);
}

}  // namespace kirzl::kernels
