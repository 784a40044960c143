// The CPU backend's entry in the dispatch table: one call per kernel file, each registering that
// file's kernels (Note [kernel registration] in kernels/dispatch_table.h). A new kernel file adds
// its register_*_kernels() here.
namespace kirzl::kernels::cpu {

void register_layer_norm_kernels();

void register_kernels() {
  register_layer_norm_kernels();
}

}  // namespace kirzl::kernels::cpu
