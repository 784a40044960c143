// Stand-ins for the CUDA softmax kernels in builds without CUDA.
#include "kernels/softmax.h"

namespace kirzl::kernels::cuda {

void softmax(Tensor&, const Tensor&, int64_t, bool log) {
  KIRZL_FAIL(ErrorCode::Unsupported, log ? "log_softmax" : "softmax", ": kirzl was built without CUDA");
}
void softmax_backward(Tensor&, const Tensor&, const Tensor&, int64_t, bool log) {
  KIRZL_FAIL(ErrorCode::Unsupported, log ? "log_softmax" : "softmax", " backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
