// Stand-ins for the CUDA pooling kernels in builds without CUDA.
#include "kernels/pool.h"

namespace kirzl::kernels::cuda {

void max_pool2d_forward(Tensor&, Tensor&, const Tensor&, const Pool2dGeometry&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "max_pool2d: kirzl was built without CUDA");
}
void max_pool2d_backward(Tensor&, const Tensor&, const Tensor&, const Pool2dGeometry&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "max_pool2d backward: kirzl was built without CUDA");
}
void avg_pool2d_forward(Tensor&, const Tensor&, const Pool2dGeometry&, bool) {
  KIRZL_FAIL(ErrorCode::Unsupported, "avg_pool2d: kirzl was built without CUDA");
}
void avg_pool2d_backward(Tensor&, const Tensor&, const Pool2dGeometry&, bool) {
  KIRZL_FAIL(ErrorCode::Unsupported, "avg_pool2d backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
