// Internal: the ring (ring.h) as a nonblocking schedule — each step's sends and receives are
// posted, and advance() tests them without blocking, reduces what has arrived and, once the step
// is complete, posts the next. Several schedules on one transport, each on a channel of its own,
// run side by side from one thread (the hierarchical pipeline, Note [hierarchical pipeline]).
// The steps, segments and reduction order are those of ring_reduce_scatter / ring_all_gather, so
// the results are the same bits as theirs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/transport.h"
#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

class RingSchedule {
 public:
  enum class Kind { ReduceScatter, AllGather, AllReduce };

  // Over `count` elements of `dtype` at `data` (in place, as the blocking ring), its messages on
  // `channel`, in pieces of at most `piece_bytes` (whole elements, at least one). A reducing
  // schedule receives into `scratch`, which must hold the largest segment
  // (scratch_bytes(count, t.size(), dtype)) and stay alive while receives may write into it (the
  // caller hands it to Transport::keep_alive). Posts the first step.
  RingSchedule(Transport& t, Kind kind, std::byte* data, int64_t count, DType dtype, ReduceOp op, int channel,
               int64_t piece_bytes, std::byte* scratch);
  RingSchedule(const RingSchedule&) = delete;
  RingSchedule& operator=(const RingSchedule&) = delete;

  // Tests the current step without blocking: reduces the pieces that have arrived (in order) and,
  // once every message of the step has completed, posts the next step. Returns whether anything
  // happened. Throws what Transport::test throws.
  bool advance();
  bool done() const { return step_ == steps_; }

  // The scratch bytes a reducing schedule of `count` elements over `size` ranks needs.
  static int64_t scratch_bytes(int64_t count, int size, DType dtype);

 private:
  void post_();
  int64_t seg_len_(int k) const;

  Transport& t_;
  std::byte* const data_;
  const int64_t count_;
  const DType dtype_;
  const ReduceOp op_;
  const int channel_;
  const int64_t esize_;
  int64_t piece_;
  std::byte* const scratch_;
  const int rs_steps_;  // the reducing steps come first
  const int steps_;
  int step_ = 0;
  // The current step: receives first (nr_ of them), then sends; the first reduced_ receives have
  // been reduced.
  std::vector<Transport::Request> reqs_;
  int64_t nr_ = 0, reduced_ = 0, rbytes_ = 0;
  std::byte* dst_ = nullptr;  // where the received segment goes (reduced into, or copied)
  bool reduce_ = false;
};

}  // namespace kirzl::comm::detail
