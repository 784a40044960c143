// The ops' index check, eager or deferred (Note [device index check] in kernels/index_check.h).
#include "kernels/index_check.h"

#include "core/cuda_runtime.h"
#include "kirzl/core/cuda.hpp"

namespace kirzl::kernels {

ValidCount check_op_indices(const Tensor& indices, const IndexCheckSpec& spec) {
  const Device where = indices.device();
  const int32_t device = where.is_cpu() ? -1 : where.index();
  // The record without the bad entry: the same text whether thrown here or at a later sync.
  auto record = [&](int64_t position, int64_t value) {
    return index_error::make_record(spec.op, indices.shape(), static_cast<int32_t>(indices.dtype()), device, position,
                                    value, spec.limit, spec.ignore);
  };
  // A device whose backend can defer the check does, unless checks were asked to be synchronous.
  if (check_indices_deferred.has_kernel(where.type()) && !kirzl::cuda::sync_index_checks())
    return {.host = -1, .device = check_indices_deferred(indices, spec, record(0, 0))};
  if (!where.is_cpu())
    cuda_rt::check_not_capturing(device,
                                 spec.op == index_error::IndexOp::Embedding      ? "embedding index check"
                                 : spec.op == index_error::IndexOp::CrossEntropy ? "cross_entropy target check"
                                                                                 : "linear_cross_entropy target check",
                                 "KIRZL_SYNC_INDEX_CHECKS=1 checks indices eagerly, which waits for the device; "
                                 "unset it for a capture (the default, deferred check can be captured)");
  const IndexCheck c = check_indices(indices, spec.limit, spec.has_ignore, spec.ignore);
  if (c.first_bad >= 0) index_error::throw_index_error(record(c.first_bad, c.bad_value));
  return {.host = c.valid, .device = Tensor()};
}

}  // namespace kirzl::kernels
