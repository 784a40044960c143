// The CUDA backend's entry in the dispatch table: one call per kernel file, each registering that
// file's kernels (Note [kernel registration] in kernels/dispatch_table.h). A new kernel file adds
// its register_*_kernels() here.
#include "kirzl/config.hpp"

namespace kirzl::kernels::cuda {

void register_attention_kernels();
void register_batch_norm_kernels();
void register_binary_kernels();
void register_copy_kernels();
void register_cross_entropy_kernels();
void register_dropout_kernels();
void register_embedding_kernels();
void register_flash_attention_kernels();
void register_fused_bias_gelu_kernels();
void register_fused_classifier_kernels();
void register_fused_layer_norm_kernels();
void register_gemm_cublaslt_kernels();
void register_index_check_kernels();
void register_layer_norm_kernels();
void register_multi_tensor_optim_kernels();
void register_multi_tensor_reduce_kernels();
void register_pool_kernels();
void register_reduce_kernels();
void register_softmax_kernels();
void register_unary_kernels();
#if KIRZL_HAS_CUDNN
void register_conv_cudnn_kernels();
#endif
#if KIRZL_HAS_CUDNN_FRONTEND
void register_attention_cudnn_frontend_kernels();
#endif

void register_kernels() {
  register_attention_kernels();
  register_batch_norm_kernels();
  register_binary_kernels();
  register_copy_kernels();
  register_cross_entropy_kernels();
  register_dropout_kernels();
  register_embedding_kernels();
  register_flash_attention_kernels();
  register_fused_bias_gelu_kernels();
  register_fused_classifier_kernels();
  register_fused_layer_norm_kernels();
  register_gemm_cublaslt_kernels();
  register_index_check_kernels();
  register_layer_norm_kernels();
  register_multi_tensor_optim_kernels();
  register_multi_tensor_reduce_kernels();
  register_pool_kernels();
  register_reduce_kernels();
  register_softmax_kernels();
  register_unary_kernels();
#if KIRZL_HAS_CUDNN
  register_conv_cudnn_kernels();  // without cuDNN, conv2d has no CUDA kernel (kNeedsCudnn)
#endif
#if KIRZL_HAS_CUDNN_FRONTEND
  register_attention_cudnn_frontend_kernels();  // else causal attention uses the flash kernels only
#endif
}

}  // namespace kirzl::kernels::cuda
