// The ring as a nonblocking schedule. See ring_schedule.h.
#include "comm/ring_schedule.h"

#include <algorithm>
#include <span>

#include "comm/reduce_ops.h"
#include "comm/ring.h"

namespace kirzl::comm::detail {

RingSchedule::RingSchedule(Transport& t, Kind kind, std::byte* data, int64_t count, DType dtype, ReduceOp op,
                           int channel, int64_t piece_bytes, std::byte* scratch)
    : t_(t), data_(data), count_(count), dtype_(dtype), op_(op), channel_(channel),
      esize_(static_cast<int64_t>(dtype_size(dtype))), scratch_(scratch),
      rs_steps_(kind == Kind::AllGather ? 0 : t.size() - 1),
      steps_(rs_steps_ + (kind == Kind::ReduceScatter ? 0 : t.size() - 1)) {
  piece_ = std::max(piece_bytes - piece_bytes % esize_, esize_);
  if (!done()) post_();
}

int64_t RingSchedule::scratch_bytes(int64_t count, int size, DType dtype) {
  return (count / size + 1) * static_cast<int64_t>(dtype_size(dtype));
}

int64_t RingSchedule::seg_len_(int k) const {
  return ring_segment_begin(count_, t_.size(), k + 1) - ring_segment_begin(count_, t_.size(), k);
}

// The segments of each step are those of ring_reduce_scatter and ring_all_gather (ring.cpp).
void RingSchedule::post_() {
  const int n = t_.size(), r = t_.rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  reduce_ = step_ < rs_steps_;
  const int s = reduce_ ? step_ : step_ - rs_steps_;
  const int send = reduce_ ? (r - s + n) % n : (r + 1 - s + n) % n;
  const int recv = reduce_ ? (r - s - 1 + 2 * n) % n : (r - s + n) % n;
  const int64_t sbytes = seg_len_(send) * esize_;
  rbytes_ = seg_len_(recv) * esize_;
  const std::byte* sptr = data_ + ring_segment_begin(count_, n, send) * esize_;
  dst_ = data_ + ring_segment_begin(count_, n, recv) * esize_;
  std::byte* rptr = reduce_ ? scratch_ : dst_;
  nr_ = (rbytes_ + piece_ - 1) / piece_;
  const int64_t ns = (sbytes + piece_ - 1) / piece_;
  reduced_ = 0;
  reqs_.clear();
  for (int64_t k = 0; k < nr_; ++k)
    reqs_.push_back(t_.receive(left, rptr + k * piece_, std::min(piece_, rbytes_ - k * piece_), channel_));
  for (int64_t k = 0; k < ns; ++k)
    reqs_.push_back(t_.send(right, sptr + k * piece_, std::min(piece_, sbytes - k * piece_), channel_));
}

bool RingSchedule::advance() {
  if (done()) return false;
  bool progressed = false;
  if (reduce_) {
    // Pieces from one sender arrive in order: test them in order, reduce each as it arrives.
    while (reduced_ < nr_ && t_.test(std::span(reqs_).subspan(static_cast<size_t>(reduced_), 1))) {
      const int64_t len = std::min(piece_, rbytes_ - reduced_ * piece_);
      reduce_into(dst_ + reduced_ * piece_, scratch_ + reduced_ * piece_, len / esize_, dtype_, op_);
      ++reduced_;
      progressed = true;
    }
    if (reduced_ < nr_) return progressed;
  }
  if (!t_.test(reqs_)) return progressed;
  ++step_;
  if (!done()) post_();
  return true;
}

}  // namespace kirzl::comm::detail
