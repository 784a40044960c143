// Device dispatch for the reference attention kernels.
#include "kernels/attention.h"

namespace kirzl::kernels {

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (q.device().is_cpu()) return cpu::attention_forward(out, probs, q, k, v, scale);
  KIRZL_FAIL(ErrorCode::Unsupported, "causal_attention on ", q.device().str(), ": CUDA kernel not implemented yet");
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q,
                        const Tensor& k, const Tensor& v, double scale) {
  if (q.device().is_cpu()) return cpu::attention_backward(gq, gk, gv, g, probs, q, k, v, scale);
  KIRZL_FAIL(ErrorCode::Unsupported, "causal_attention backward on ", q.device().str(),
             ": CUDA kernel not implemented yet");
}

}  // namespace kirzl::kernels
