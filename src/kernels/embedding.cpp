// Device dispatch for embedding kernels.
#include "kernels/embedding.h"

namespace kirzl::kernels {

void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices) {
  if (weight.device().is_cpu()) return cpu::embedding_forward(out, weight, indices);
  KIRZL_FAIL(ErrorCode::Unsupported, "embedding on ", weight.device().str(), ": CUDA kernel not implemented yet");
}

void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices) {
  if (gw.device().is_cpu()) return cpu::embedding_backward(gw, g, indices);
  KIRZL_FAIL(ErrorCode::Unsupported, "embedding backward on ", gw.device().str(), ": CUDA kernel not implemented yet");
}

}  // namespace kirzl::kernels
