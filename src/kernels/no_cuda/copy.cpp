// Stand-ins for the CUDA copy and fill kernels in builds without CUDA.
#include "kernels/copy.h"

namespace kirzl::kernels::cuda {

void copy(Tensor&, const Tensor&) { KIRZL_FAIL(ErrorCode::Unsupported, "copy: kirzl was built without CUDA"); }

void fill(Tensor&, double) { KIRZL_FAIL(ErrorCode::Unsupported, "fill: kirzl was built without CUDA"); }

}  // namespace kirzl::kernels::cuda
