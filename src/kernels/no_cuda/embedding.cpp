// Stand-ins for the CUDA embedding kernels in builds without CUDA.
#include "kernels/embedding.h"

namespace kirzl::kernels::cuda {

void embedding_forward(Tensor&, const Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "embedding: kirzl was built without CUDA");
}
void embedding_backward(Tensor&, const Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "embedding backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
