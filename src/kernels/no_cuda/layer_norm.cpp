// Stand-ins for the CUDA layer-norm kernels in builds without CUDA.
#include "kernels/layer_norm.h"

namespace kirzl::kernels::cuda {

void layer_norm_forward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "layer_norm: kirzl was built without CUDA");
}
void layer_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "layer_norm backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
