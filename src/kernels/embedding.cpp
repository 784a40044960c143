// Device dispatch for embedding kernels.
#include "kernels/embedding.h"

namespace kirzl::kernels {

void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices) {
  if (weight.device().is_cpu()) return cpu::embedding_forward(out, weight, indices);
  return cuda::embedding_forward(out, weight, indices);
}

void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices) {
  if (gw.device().is_cpu()) return cpu::embedding_backward(gw, g, indices);
  return cuda::embedding_backward(gw, g, indices);
}

}  // namespace kirzl::kernels
