// Stand-ins for the CUDA unary elementwise and where kernels in builds without CUDA.
#include "kernels/unary.h"

namespace kirzl::kernels::cuda {

void unary(UnaryOp, Tensor&, const Tensor&, const UnaryArgs&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "unary elementwise op: kirzl was built without CUDA");
}

void unary_backward(UnaryOp, Tensor&, const Tensor&, const Tensor&, const UnaryArgs&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "unary elementwise backward: kirzl was built without CUDA");
}

void where(Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "where: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
