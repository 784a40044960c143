// Stand-ins for the CUDA dropout kernels in builds without CUDA.
#include "kernels/dropout.h"

namespace kirzl::kernels::cuda {

void dropout_apply(Tensor&, const Tensor&, double, double, uint64_t, uint64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "dropout: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
