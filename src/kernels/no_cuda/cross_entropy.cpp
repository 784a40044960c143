// Stand-ins for the CUDA cross-entropy kernels in builds without CUDA.
#include "kernels/cross_entropy.h"

namespace kirzl::kernels::cuda {

void cross_entropy_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, int64_t, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "cross_entropy: kirzl was built without CUDA");
}
void cross_entropy_backward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, int64_t,
                            double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "cross_entropy backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
