// Device dispatch for the flash attention kernels.
#include "kernels/flash_attention.h"

namespace kirzl::kernels {

void flash_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             double scale) {
  if (q.device().is_cpu()) return cpu::flash_attention_forward(out, lse, q, k, v, scale);
  return cuda::flash_attention_forward(out, lse, q, k, v, scale);
}

void flash_attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out,
                              const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (q.device().is_cpu()) return cpu::flash_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
  return cuda::flash_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
}

bool flash_attention_cuda_supports(DType dtype, int64_t head_dim) {
  return (dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16) && (head_dim == 64 || head_dim == 128);
}

}  // namespace kirzl::kernels
