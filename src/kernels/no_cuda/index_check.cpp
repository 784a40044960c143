// Stand-in for the CUDA index check in builds without CUDA.
#include "kernels/index_check.h"

namespace kirzl::kernels::cuda {

IndexCheck check_indices(const Tensor&, int64_t, bool, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, "check_indices: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda

namespace kirzl::kernels::cuda {

Tensor check_indices_deferred(const Tensor&, const IndexCheckSpec&, const index_error::IndexErrorRecord&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "check_indices: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
