// Device dispatch for index range checks.
#include "kernels/index_check.h"

namespace kirzl::kernels {

IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore) {
  if (indices.device().is_cpu()) return cpu::check_indices(indices, limit, has_ignore, ignore);
  return cuda::check_indices(indices, limit, has_ignore, ignore);
}

}  // namespace kirzl::kernels
