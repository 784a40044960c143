// Stand-ins for the CUDA reduction kernels in builds without CUDA.
#include "kernels/reduce.h"

namespace kirzl::kernels::cuda {

void sum(Tensor&, const Tensor&, const std::vector<bool>&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "sum: kirzl was built without CUDA");
}

void extremum(bool is_max, Tensor&, Tensor&, const Tensor&, int64_t) {
  KIRZL_FAIL(ErrorCode::Unsupported, is_max ? "max" : "min", ": kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
