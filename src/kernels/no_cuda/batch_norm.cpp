// Stand-ins for the CUDA batch-norm kernels in a build without CUDA.
#include "kernels/batch_norm.h"

namespace kirzl::kernels::cuda {

void batch_norm_stats(Tensor&, Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "batch_norm: kirzl was built without CUDA");
}
void batch_norm_forward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "batch_norm: kirzl was built without CUDA");
}
void batch_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, double, bool) {
  KIRZL_FAIL(ErrorCode::Unsupported, "batch_norm backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
