// Internal: the record of a bad index found on a device, and the logic around it that does not
// depend on where the record lives (Note [deferred index check]).
//
// Note [deferred index check]: embedding, cross_entropy and linear_cross_entropy must reject an
// index outside its table with an Error naming the op, the value and the range, but on CUDA
// waiting for the check at every call would stop the host from running ahead of the GPU. So on
// CUDA the check kernel (kernels/cuda/index_check.cu) does not report to the host: it publishes
// the first bad index it finds into its device's IndexErrorRecord and the op goes on. The kernels
// that consume the indices stay in bounds on a bad one (NaN rows, skipped rows; Note [device index
// check]), so nothing is read or written out of bounds before the error is reported.
//
// The record is read where the host waits for the device anyway: cuda::synchronize, Stream and
// Event synchronize, and every copy that returns with the bytes in place (Tensor::to(cpu),
// item(), blocking host-to-device and peer copies) — see throw_if_index_error and its callers in
// src/core/cuda/. There the record is taken (read and cleared) and thrown as
// Error{InvalidArgument} with the message the eager check gives (index_error_message is the one
// place that words it, for both). An error is therefore reported at the first such point after
// the kernel that found it has run, which may be an op or two later than the call; the message
// names the op, so it still says where to look. KIRZL_SYNC_INDEX_CHECKS=1 restores the eager
// check at the call (cuda::sync_index_checks).
//
// First error wins: once a record is published, later bad indices (of the same call or of later
// calls, on any stream of the device) are dropped until it is taken, so the report is the
// earliest bad call, not the last. Within one call the check kernel reduces to the lowest bad
// position before publishing (integer atomics; the same answer on every run), and one thread
// publishes. Across calls on concurrent streams the claim is an atomic compare-and-swap, and the
// fields are written before `ready` is set, so a reader never sees half a record.
//
// Where the record lives is behind IndexErrorFlag: on CUDA the record is in mapped (zero-copy)
// pinned host memory, so the check at a synchronising point is one host memory read and costs no
// CUDA call unless an error is there; the claim word is in device memory, because device atomics
// on host memory are not atomic over PCIe. HostIndexErrorFlag keeps both in host memory with the
// same protocol (publish_index_error), for tests on machines without a GPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "kirzl/core/shape.hpp"

#if defined(__CUDACC__)
#define KIRZL_HOST_DEVICE __host__ __device__
#else
#define KIRZL_HOST_DEVICE
#endif

namespace kirzl::index_error {

/// The op whose indices were bad; it decides the wording of the message.
enum class IndexOp : int32_t { None = 0, Embedding = 1, CrossEntropy = 2, LinearCrossEntropy = 3 };

/// One bad index and what is needed to describe it. Plain data: written by a device thread,
/// read by the host. `ready` is written last (1 = complete) and cleared by the reader.
struct IndexErrorRecord {
  int32_t ready = 0;
  IndexOp op = IndexOp::None;
  int32_t dtype = 0;         ///< the indices' DType, as its integer value
  int32_t device = -1;       ///< CUDA device index of the indices (-1: the CPU)
  int64_t position = 0;      ///< flat position of the bad entry in the indices
  int64_t value = 0;         ///< the bad entry
  int64_t limit = 0;         ///< valid entries are in [0, limit)
  int64_t ignore_index = 0;  ///< also valid for the cross-entropy ops
  int32_t ndim = 0;          ///< the indices' shape
  int32_t pad_ = 0;
  int64_t shape[kMaxDims] = {};
};

/// The record for `indices` (its shape, dtype and device) with a bad `value` at flat `position`.
IndexErrorRecord make_record(IndexOp op, const Shape& shape, int32_t dtype, int32_t device, int64_t position,
                             int64_t value, int64_t limit, int64_t ignore_index);

/// The message of Error{InvalidArgument} for `r`: the op, the value, where it is, and the valid
/// range. The eager checks throw the same text.
std::string index_error_message(const IndexErrorRecord& r);

/// [[noreturn]]: throws Error{InvalidArgument, index_error_message(r)}.
[[noreturn]] void throw_index_error(const IndexErrorRecord& r);

/// Publishes `e` into `shared` unless an error is there already (first error wins). `claim()`
/// returns true for exactly one caller until the record is cleared (an atomic compare-and-swap);
/// `fence()` orders the field writes before the write of `ready`. One function for the device
/// (index_check.cu) and the host (HostIndexErrorFlag), so the tests on the CPU test the protocol
/// the GPU runs. Returns whether `e` was published.
template <typename Claim, typename Fence>
KIRZL_HOST_DEVICE bool publish_index_error(volatile IndexErrorRecord* shared, const IndexErrorRecord& e, Claim claim,
                                           Fence fence) {
  if (!claim()) return false;
  shared->op = e.op;
  shared->dtype = e.dtype;
  shared->device = e.device;
  shared->position = e.position;
  shared->value = e.value;
  shared->limit = e.limit;
  shared->ignore_index = e.ignore_index;
  shared->ndim = e.ndim;
  for (int i = 0; i < kMaxDims; ++i) shared->shape[i] = e.shape[i];
  fence();
  shared->ready = 1;
  return true;
}

/// Where one device's record lives, as the synchronising points see it.
class IndexErrorFlag {
 public:
  virtual ~IndexErrorFlag() = default;
  /// The published record, which is cleared so that the next error can be published; nullopt
  /// when none is. Call only where the host has waited for the work that may have published one
  /// (a record still being written is not returned). Thread-safe.
  virtual std::optional<IndexErrorRecord> take() = 0;
};

/// The check-at-sync hook: throws Error{InvalidArgument} naming the op, the bad value and the
/// valid range if `flag` holds a record (which is cleared: each error is thrown once).
void throw_if_index_error(IndexErrorFlag& flag);

/// Reads and clears a record in memory shared with a writer that follows publish_index_error:
/// nullopt unless `ready` is set. The caller makes the claim available again afterwards.
std::optional<IndexErrorRecord> take_record(volatile IndexErrorRecord* shared);

/// The flag in host memory, with the device's protocol: publish() plays the check kernel.
class HostIndexErrorFlag final : public IndexErrorFlag {
 public:
  /// Publishes `e` unless a record is there (first error wins); thread-safe.
  bool publish(const IndexErrorRecord& e);
  std::optional<IndexErrorRecord> take() override;

 private:
  std::atomic<int32_t> claimed_{0};
  IndexErrorRecord record_;
  std::mutex take_mutex_;
};

}  // namespace kirzl::index_error
