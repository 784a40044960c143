// Device dispatch for the reference attention kernels.
#include "kernels/attention.h"

namespace kirzl::kernels {

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (q.device().is_cpu()) return cpu::attention_forward(out, probs, q, k, v, scale);
  return cuda::attention_forward(out, probs, q, k, v, scale);
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q,
                        const Tensor& k, const Tensor& v, double scale) {
  if (q.device().is_cpu()) return cpu::attention_backward(gq, gk, gv, g, probs, q, k, v, scale);
  return cuda::attention_backward(gq, gk, gv, g, probs, q, k, v, scale);
}

}  // namespace kirzl::kernels
