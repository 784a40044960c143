// Internal: how the reducer groups parameters into buckets. See Note [bucket order].
#pragma once

#include <cstddef>
#include <vector>

#include "kirzl/core/device.hpp"
#include "kirzl/core/dtype.hpp"

namespace kirzl::ddp_detail {

struct ParamSlot {
  size_t bytes = 0;
  DType dtype = DType::f32;
  Device device;
};

// Note [bucket order]: gradients of the last layers are ready first in backward, so parameters
// are bucketed in reverse registration order; a bucket closes when adding the next parameter
// would pass the cap (a single larger parameter gets a bucket of its own) or when the dtype or
// device changes (a bucket is one flat buffer). The first bucket has a small cap so that
// communication starts as early as possible. Every rank computes the same layout from the same
// parameter list, which the construction-time fingerprint verifies.
std::vector<std::vector<size_t>> assign_buckets(const std::vector<ParamSlot>& params, size_t cap_bytes,
                                                size_t first_cap_bytes);

}  // namespace kirzl::ddp_detail
