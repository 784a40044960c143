// Device dispatch for index range checks, eager or deferred (Note [device index check]).
#include "kernels/index_check.h"

#include "kirzl/core/cuda.hpp"

namespace kirzl::kernels {

IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore) {
  if (indices.device().is_cpu()) return cpu::check_indices(indices, limit, has_ignore, ignore);
  return cuda::check_indices(indices, limit, has_ignore, ignore);
}

ValidCount check_op_indices(const Tensor& indices, const IndexCheckSpec& spec) {
  const int32_t device = indices.device().is_cpu() ? -1 : indices.device().index();
  // The record without the bad entry: the same text whether thrown here or at a later sync.
  auto record = [&](int64_t position, int64_t value) {
    return index_error::make_record(spec.op, indices.shape(), static_cast<int32_t>(indices.dtype()), device, position,
                                    value, spec.limit, spec.ignore);
  };
  if (!indices.device().is_cpu() && !kirzl::cuda::sync_index_checks())
    return {.host = -1, .device = cuda::check_indices_deferred(indices, spec, record(0, 0))};
  const IndexCheck c = check_indices(indices, spec.limit, spec.has_ignore, spec.ignore);
  if (c.first_bad >= 0) index_error::throw_index_error(record(c.first_bad, c.bad_value));
  return {.host = c.valid, .device = Tensor()};
}

}  // namespace kirzl::kernels
