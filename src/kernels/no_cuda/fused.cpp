// Stand-ins for the CUDA fused kernels in builds without CUDA.
#include "kernels/flash_attention.h"
#include "kernels/fused_bias_gelu.h"
#include "kernels/fused_classifier.h"
#include "kernels/fused_layer_norm.h"

namespace kirzl::kernels::cuda {

void residual_layer_norm_forward(Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, int64_t, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "residual_layer_norm: kirzl was built without CUDA");
}
void residual_layer_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const Tensor&, const Tensor&, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "residual_layer_norm: kirzl was built without CUDA");
}
void bias_gelu_forward(Tensor&, const Tensor&, const Tensor&, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "bias_gelu: kirzl was built without CUDA");
}
void bias_gelu_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "bias_gelu: kirzl was built without CUDA");
}
void classifier_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, int64_t, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "linear_cross_entropy: kirzl was built without CUDA");
}
void classifier_backward_inplace(Tensor&, const Tensor&, const Tensor&, const Tensor&, double, int64_t, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "linear_cross_entropy: kirzl was built without CUDA");
}
void flash_attention_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "flash_attention: kirzl was built without CUDA");
}
void flash_attention_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "flash_attention: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
