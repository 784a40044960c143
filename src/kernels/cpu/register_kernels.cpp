// The CPU backend's entry in the dispatch table: one call per kernel file, each registering that
// file's kernels (Note [kernel registration] in kernels/dispatch_table.h). A new kernel file adds
// its register_*_kernels() here.
namespace kirzl::kernels::cpu {

void register_attention_kernels();
void register_batch_norm_kernels();
void register_binary_kernels();
void register_conv_kernels();
void register_copy_kernels();
void register_cross_entropy_kernels();
void register_dropout_kernels();
void register_embedding_kernels();
void register_flash_attention_kernels();
void register_fused_bias_gelu_kernels();
void register_fused_classifier_kernels();
void register_fused_layer_norm_kernels();
void register_gemm_kernels();
void register_index_check_kernels();
void register_layer_norm_kernels();
void register_optim_update_kernels();
void register_pool_kernels();
void register_reduce_kernels();
void register_softmax_kernels();
void register_unary_kernels();

void register_kernels() {
  register_attention_kernels();
  register_batch_norm_kernels();
  register_binary_kernels();
  register_conv_kernels();
  register_copy_kernels();
  register_cross_entropy_kernels();
  register_dropout_kernels();
  register_embedding_kernels();
  register_flash_attention_kernels();
  register_fused_bias_gelu_kernels();
  register_fused_classifier_kernels();
  register_fused_layer_norm_kernels();
  register_gemm_kernels();
  register_index_check_kernels();
  register_layer_norm_kernels();
  register_optim_update_kernels();
  register_pool_kernels();
  register_reduce_kernels();
  register_softmax_kernels();
  register_unary_kernels();
}

}  // namespace kirzl::kernels::cpu
