// Stand-ins for the CUDA binary elementwise kernels in builds without CUDA.
#include "kernels/binary.h"

namespace kirzl::kernels::cuda {

void binary(BinaryOp, Tensor&, const Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "binary elementwise op: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
