// Device dispatch for reductions.
#include "kernels/reduce.h"

namespace kirzl::kernels {

void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  if (x.device().is_cpu()) return cpu::sum(out, x, reduce);
  KIRZL_FAIL(ErrorCode::Unsupported, "sum on ", x.device().str(), ": CUDA reduction kernels are not implemented yet");
}

void extremum(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  if (x.device().is_cpu()) return cpu::extremum(is_max, values, indices, x, dim);
  KIRZL_FAIL(ErrorCode::Unsupported, is_max ? "max" : "min", " on ", x.device().str(),
             ": CUDA reduction kernels are not implemented yet");
}

}  // namespace kirzl::kernels
