// Stand-ins for the CUDA GEMM kernels in a build without CUDA.
#include "kernels/gemm.h"

namespace kirzl::kernels::cuda {

void gemm(Tensor&, const Tensor&, const Tensor&, bool, bool, double, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "gemm: kirzl was built without CUDA");
}
void gemm_bias(Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "gemm_bias: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
