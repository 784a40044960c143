// Device dispatch for reductions.
#include "kernels/reduce.h"

namespace kirzl::kernels {

void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  if (x.device().is_cpu()) return cpu::sum(out, x, reduce);
  return cuda::sum(out, x, reduce);
}

void extremum(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  if (x.device().is_cpu()) return cpu::extremum(is_max, values, indices, x, dim);
  return cuda::extremum(is_max, values, indices, x, dim);
}

}  // namespace kirzl::kernels
