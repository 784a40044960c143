// Device dispatch for the fused cross-entropy kernels.
#include "kernels/cross_entropy.h"

namespace kirzl::kernels {

void cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                           int64_t ignore_index, double label_smoothing) {
  if (logits.device().is_cpu()) return cpu::cross_entropy_forward(losses, lse, logits, targets, ignore_index, label_smoothing);
  return cuda::cross_entropy_forward(losses, lse, logits, targets, ignore_index, label_smoothing);
}

void cross_entropy_backward(Tensor& gx, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad, double scale, int64_t ignore_index, double label_smoothing) {
  if (logits.device().is_cpu())
    return cpu::cross_entropy_backward(gx, logits, targets, lse, grad, scale, ignore_index, label_smoothing);
  return cuda::cross_entropy_backward(gx, logits, targets, lse, grad, scale, ignore_index, label_smoothing);
}

}  // namespace kirzl::kernels
