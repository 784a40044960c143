// Internal: range checks of integer index tensors (class targets, embedding indices) on the
// tensor's own device.
//
// Note [device index check]: an index outside its table must never reach a kernel that would read
// or write out of bounds. The ops check before they launch: on the CPU by a loop; on CUDA by a
// kernel that counts the valid entries and finds the first bad position (integer atomics: the
// result does not depend on the order), whose 24-byte result is copied back on the current
// stream, which is synchronised for it. That one small wait per call is the price of a clear
// kirzl::Error naming the position and value (a device-side error flag checked later could only
// say that something went wrong some time before). The kernels themselves also stay in bounds on
// a bad index (NaN rows), so calling them directly is safe too.
#pragma once

#include <cstdint>

#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// What a scan of an index tensor found.
struct IndexCheck {
  int64_t valid = 0;       ///< entries in [0, limit) (ignored entries not counted)
  int64_t first_bad = -1;  ///< flat position of the first entry out of range, -1 when none
  int64_t bad_value = 0;   ///< the value at first_bad
};

/// Scans contiguous i32/i64 `indices` for entries outside [0, limit); entries equal to `ignore`
/// are skipped when `has_ignore`. Blocks the calling thread until the result is known (on CUDA
/// it synchronises the current stream, Note [device index check]).
IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore);

namespace cpu {
IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore);
}  // namespace cpu

namespace cuda {
IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore);
}  // namespace cuda

}  // namespace kirzl::kernels
