// The device-independent part of the cuDNN attention kernels' support check (attention_cudnn.h).
#include "kernels/attention_cudnn.h"

#include "kirzl/core/error.hpp"

namespace kirzl::kernels {

std::string cudnn_attention_static_reason(DType dtype, int64_t head_dim) {
  if (dtype != DType::bf16 && dtype != DType::f16)
    return detail::str_cat("cuDNN's fused attention takes bf16 or f16, got ", dtype_name(dtype));
  if (head_dim <= 0 || head_dim % 8 != 0 || head_dim > 256)
    return detail::str_cat("cuDNN's fused attention takes a head dim that is a positive multiple of 8 up to 256, got ",
                           head_dim);
  return {};
}

}  // namespace kirzl::kernels
