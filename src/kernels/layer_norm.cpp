// Device dispatch for layer-norm kernels.
#include "kernels/layer_norm.h"

namespace kirzl::kernels {

void layer_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, int64_t n, double eps) {
  if (x.device().is_cpu()) return cpu::layer_norm_forward(y, mean, rstd, x, weight, bias, n, eps);
  return cuda::layer_norm_forward(y, mean, rstd, x, weight, bias, n, eps);
}

void layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, int64_t n) {
  if (x.device().is_cpu()) return cpu::layer_norm_backward(gx, gw, gb, g, x, mean, rstd, weight, n);
  return cuda::layer_norm_backward(gx, gw, gb, g, x, mean, rstd, weight, n);
}

}  // namespace kirzl::kernels
