// Bad-index records: the message, the check-at-sync hook and the host-memory flag
// (Note [deferred index check]).
#include "core/index_error.h"

#include <cstdlib>

#include "core/environment.h"
#include "kirzl/core/cuda.hpp"
#include "kirzl/core/device.hpp"
#include "kirzl/core/dtype.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl {

bool cuda::sync_index_checks() {
  // Read once: a configuration of the process, not state that changes while it runs.
  static const bool eager = env::flag("KIRZL_SYNC_INDEX_CHECKS");
  return eager;
}

namespace index_error {

namespace {

Shape shape_of(const IndexErrorRecord& r) {
  Shape s;
  for (int32_t d = 0; d < r.ndim && d < kMaxDims; ++d) s.push_back(r.shape[d]);
  return s;
}

// "[i, j]": the multi-index of flat position `flat` in `shape`.
std::string position_str(const Shape& shape, int64_t flat) {
  Shape idx;
  idx.resize(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 0) break;
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx.str();
}

}  // namespace

IndexErrorRecord make_record(IndexOp op, const Shape& shape, int32_t dtype, int32_t device, int64_t position,
                             int64_t value, int64_t limit, int64_t ignore_index) {
  IndexErrorRecord r;
  r.op = op;
  r.dtype = dtype;
  r.device = device;
  r.position = position;
  r.value = value;
  r.limit = limit;
  r.ignore_index = ignore_index;
  r.ndim = static_cast<int32_t>(shape.size());
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) r.shape[d] = shape[d];
  return r;
}

std::string index_error_message(const IndexErrorRecord& r) {
  const Shape shape = shape_of(r);
  const std::string range = detail::str_cat("(expected 0 .. ", r.limit - 1);
  switch (r.op) {
    case IndexOp::Embedding: {
      const Device dev = r.device < 0 ? Device::cpu() : Device::cuda(r.device);
      return detail::str_cat("embedding: index ", r.value, " at flat position ", r.position, " of indices ",
                             dtype_name(static_cast<DType>(r.dtype)), shape.str(), " on ", dev.str(),
                             " is out of range for a weight with ", r.limit, " rows ", range, ")");
    }
    case IndexOp::CrossEntropy:
      return detail::str_cat("cross_entropy: target ", r.value, " at position ", position_str(shape, r.position),
                             " is out of range for ", r.limit, " classes ", range, " or ignore_index ", r.ignore_index,
                             ")");
    case IndexOp::LinearCrossEntropy:
      return detail::str_cat("linear_cross_entropy: target ", r.value, " at row ", r.position, " is out of range for ",
                             r.limit, " classes ", range, " or ignore_index ", r.ignore_index, ")");
    case IndexOp::None: break;
  }
  return detail::str_cat("index ", r.value, " at flat position ", r.position, " is out of range ", range,
                         ") (unknown op ", static_cast<int32_t>(r.op), " in the index error record)");
}

void throw_index_error(const IndexErrorRecord& r) {
  KIRZL_FAIL(ErrorCode::InvalidArgument, index_error_message(r));
}

void throw_if_index_error(IndexErrorFlag& flag) {
  if (std::optional<IndexErrorRecord> r = flag.take()) throw_index_error(*r);
}

std::optional<IndexErrorRecord> take_record(volatile IndexErrorRecord* shared) {
  if (shared->ready == 0) return std::nullopt;
  // The writer set `ready` after the fields (publish_index_error): read them after it.
  std::atomic_thread_fence(std::memory_order_acquire);
  IndexErrorRecord r;
  r.ready = 1;
  r.op = shared->op;
  r.dtype = shared->dtype;
  r.device = shared->device;
  r.position = shared->position;
  r.value = shared->value;
  r.limit = shared->limit;
  r.ignore_index = shared->ignore_index;
  r.ndim = shared->ndim;
  for (int i = 0; i < kMaxDims; ++i) r.shape[i] = shared->shape[i];
  std::atomic_thread_fence(std::memory_order_release);
  shared->ready = 0;
  return r;
}

bool HostIndexErrorFlag::publish(const IndexErrorRecord& e) {
  return publish_index_error(
      &record_, e,
      [this] {
        int32_t expected = 0;
        return claimed_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel);
      },
      [] { std::atomic_thread_fence(std::memory_order_release); });
}

std::optional<IndexErrorRecord> HostIndexErrorFlag::take() {
  std::lock_guard<std::mutex> lock(take_mutex_);
  std::optional<IndexErrorRecord> r = take_record(&record_);
  // Only now may the next error claim the record.
  if (r) claimed_.store(0, std::memory_order_release);
  return r;
}

}  // namespace index_error
}  // namespace kirzl
