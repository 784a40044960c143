// Device dispatch for the classifier loss of linear_cross_entropy.
#include "kernels/fused_classifier.h"

namespace kirzl::kernels {

void classifier_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                        int64_t classes, int64_t ignore_index) {
  if (logits.device().is_cpu()) return cpu::classifier_forward(losses, lse, logits, targets, classes, ignore_index);
  return cuda::classifier_forward(losses, lse, logits, targets, classes, ignore_index);
}

void classifier_backward_inplace(Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad,
                                 double scale, int64_t classes, int64_t ignore_index) {
  if (logits.device().is_cpu())
    return cpu::classifier_backward_inplace(logits, targets, lse, grad, scale, classes, ignore_index);
  return cuda::classifier_backward_inplace(logits, targets, lse, grad, scale, classes, ignore_index);
}

}  // namespace kirzl::kernels
