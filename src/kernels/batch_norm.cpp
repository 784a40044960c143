// Device dispatch for batch-normalisation kernels.
#include "kernels/batch_norm.h"

namespace kirzl::kernels {

void batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x) {
  if (x.device().is_cpu()) return cpu::batch_norm_stats(mean, var, x);
  return cuda::batch_norm_stats(mean, var, x);
}
void batch_norm_forward(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                        const Tensor& bias, double eps) {
  if (x.device().is_cpu()) return cpu::batch_norm_forward(y, x, mean, var, weight, bias, eps);
  return cuda::batch_norm_forward(y, x, mean, var, weight, bias, eps);
}
void batch_norm_backward(Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias, const Tensor& grad_y, const Tensor& x,
                         const Tensor& mean, const Tensor& var, const Tensor& weight, double eps, bool training) {
  if (x.device().is_cpu())
    return cpu::batch_norm_backward(grad_x, grad_weight, grad_bias, grad_y, x, mean, var, weight, eps, training);
  return cuda::batch_norm_backward(grad_x, grad_weight, grad_bias, grad_y, x, mean, var, weight, eps, training);
}

}  // namespace kirzl::kernels
