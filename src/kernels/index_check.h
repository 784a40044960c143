// Internal: range checks of integer index tensors (class targets, embedding indices) on the
// tensor's own device.
//
// Note [device index check]: an index outside its table must never reach a kernel that would read
// or write out of bounds, and must be reported as a kirzl::Error naming the op, the value and the
// valid range. The ops run check_op_indices before they launch. On the CPU it is a loop that
// throws at the call. On CUDA it is a kernel that counts the valid entries and finds the lowest
// bad position (integer atomics: the result does not depend on the order in which threads run);
// by default its result stays on the device and a bad index is published into the device's error
// flag, thrown at the next synchronising point (Note [deferred index check] in
// src/core/index_error.h), so the check costs no host wait. Under cuda::sync_index_checks()
// (KIRZL_SYNC_INDEX_CHECKS=1) the 24-byte result is copied back instead and the stream
// synchronised, and the op throws at the call. Either way the kernels that consume the indices
// stay in bounds on a bad index (NaN rows, skipped rows): with the deferred check they do run on
// bad indices before the error is thrown, and calling them directly is safe too.
#pragma once

#include <cstdint>

#include "core/index_error.h"
#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// What a scan of an index tensor found.
struct IndexCheck {
  int64_t valid = 0;       ///< entries in [0, limit) (ignored entries not counted)
  int64_t first_bad = -1;  ///< flat position of the first entry out of range, -1 when none
  int64_t bad_value = 0;   ///< the value at first_bad
};

/// What an op checks: entries in [0, limit), and entries equal to `ignore` when `has_ignore`;
/// `op` words the error.
struct IndexCheckSpec {
  index_error::IndexOp op = index_error::IndexOp::None;
  int64_t limit = 0;
  bool has_ignore = false;
  int64_t ignore = 0;
};

/// The number of valid entries, on the host when the check was eager, else on the device.
struct ValidCount {
  int64_t host = -1;  ///< >= 0 when known on the host
  Tensor device;      ///< else a 0-d i64 tensor on the indices' device, ready in stream order
};

/// The ops' check of contiguous i32/i64 `indices` (Note [device index check]). On the CPU, and on
/// CUDA under cuda::sync_index_checks(), eager: throws Error{InvalidArgument} (the op's message)
/// at the call and returns the count on the host. Otherwise, on CUDA, deferred: queues the check
/// on the current stream, returns at once with the count on the device, and a bad index is
/// thrown by the device's next synchronising point (Note [deferred index check]).
ValidCount check_op_indices(const Tensor& indices, const IndexCheckSpec& spec);

/// Scans contiguous i32/i64 `indices` for entries outside [0, limit); entries equal to `ignore`
/// are skipped when `has_ignore`. Blocks the calling thread until the result is known (on CUDA
/// it synchronises the current stream).
KIRZL_DECLARE_KERNEL(check_indices, IndexCheck (*)(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore));

/// Queues the check on the current stream without waiting; publishes the lowest bad position of
/// `indices` into its device's index error flag (`e` filled in but for position and value).
/// Returns the valid count as a 0-d i64 tensor on the device. CUDA only: check_op_indices defers
/// the check on the devices that register this kernel.
KIRZL_DECLARE_KERNEL(check_indices_deferred, Tensor (*)(const Tensor& indices, const IndexCheckSpec& spec,
                                                        const index_error::IndexErrorRecord& e));

}  // namespace kirzl::kernels
