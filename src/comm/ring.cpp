// The ring algorithm. See ring.h.
//
// Note [ring all-reduce]: Open MPI's nonblocking MPI_Iallreduce (libnbc) picks recursive
// doubling, about half the bandwidth of the blocking tuned MPI_Allreduce at megabytes. Large
// all-reduces therefore run a ring over nonblocking point-to-point messages instead — reduce-
// scatter then all-gather, n - 1 steps each, 2 (n - 1) / n of the data per rank, the bandwidth-
// optimal schedule — which keeps every wait under the deadline (on one node from
// KIRZL_MPI_RING_BYTES, Note [mpi all-reduce choice]). Each segment is reduced once and then
// copied, so all ranks get bitwise-identical results.
#include "comm/ring.h"

#include <algorithm>
#include <new>
#include <vector>

#include "comm/reduce_ops.h"
#include "core/environment.h"

namespace kirzl::comm::detail {

namespace {

// One step of the ring: sends segment `send` to the right and receives segment `recv` from the
// left, in pieces, all posted at once; with `reduce`, each received piece is reduced into the
// data while the next ones are still arriving (a pipeline).
class RingStep {
 public:
  RingStep(Transport& t, std::byte* data, int64_t count, DType dtype, ReduceOp op, const RingOptions& options)
      : t_(t), data_(data), count_(count), dtype_(dtype), op_(op), esize_(static_cast<int64_t>(dtype_size(dtype))),
        scratch_(options.scratch ? *options.scratch : own_scratch_) {
    piece_ = std::max(options.piece_bytes - options.piece_bytes % esize_, esize_);
  }

  void exchange(int send, int recv, bool reduce) {
    const int n = t_.size(), r = t_.rank();
    const int right = (r + 1) % n, left = (r + n - 1) % n;
    const int64_t sbytes = seg_len(send) * esize_, rbytes = seg_len(recv) * esize_;
    std::byte* sptr = data_ + ring_segment_begin(count_, n, send) * esize_;
    std::byte* dst = data_ + ring_segment_begin(count_, n, recv) * esize_;
    std::byte* rptr = reduce ? scratch(rbytes) : dst;
    const int64_t nr = (rbytes + piece_ - 1) / piece_, ns = (sbytes + piece_ - 1) / piece_;
    std::vector<Transport::Request> reqs;
    reqs.reserve(static_cast<size_t>(nr + ns));
    for (int64_t k = 0; k < nr; ++k) reqs.push_back(t_.receive(left, rptr + k * piece_, std::min(piece_, rbytes - k * piece_)));
    for (int64_t k = 0; k < ns; ++k) reqs.push_back(t_.send(right, sptr + k * piece_, std::min(piece_, sbytes - k * piece_)));
    if (reduce) {
      // Pieces from one sender arrive in order, so waiting in order is enough.
      for (int64_t k = 0; k < nr; ++k) {
        t_.wait(std::span(reqs).subspan(static_cast<size_t>(k), 1));
        const int64_t len = std::min(piece_, rbytes - k * piece_);
        reduce_into(dst + k * piece_, rptr + k * piece_, len / esize_, dtype_, op_);
      }
    }
    t_.wait(reqs);
  }

 private:
  int64_t seg_len(int k) const { return ring_segment_begin(count_, t_.size(), k + 1) - ring_segment_begin(count_, t_.size(), k); }
  // The receive buffer of a reducing step, as large as the largest segment: the caller's
  // (RingOptions::scratch) or this ring's own, kept alive by the transport while receives may
  // write into it.
  std::byte* scratch(int64_t bytes) {
    if (scratch_.bytes < bytes) {
      const int64_t largest = std::max((seg_len(0) + 1) * esize_, bytes);
      // Note [ring scratch alignment]
      constexpr std::align_val_t align{kRingScratchAlignment};
      scratch_.data = std::shared_ptr<std::byte[]>(new (align) std::byte[static_cast<size_t>(largest)],
                                                   [](std::byte* p) { ::operator delete[](p, align); });
      scratch_.bytes = largest;
      kept_ = nullptr;
    }
    if (kept_ != scratch_.data.get()) {
      t_.keep_alive(scratch_.data);
      kept_ = scratch_.data.get();
    }
    return scratch_.data.get();
  }

  Transport& t_;
  std::byte* data_;
  const int64_t count_;
  const DType dtype_;
  const ReduceOp op_;
  const int64_t esize_;
  int64_t piece_;
  RingScratch own_scratch_;
  RingScratch& scratch_;
  const std::byte* kept_ = nullptr;  // the scratch buffer already handed to keep_alive
};

}  // namespace

int64_t ring_segment_begin(int64_t count, int size, int k) { return count * k / size; }

int ring_reduced_segment(int rank, int size) { return (rank + 1) % size; }

void ring_reduce_scatter(Transport& t, void* data, int64_t count, DType dtype, ReduceOp op, const RingOptions& options) {
  const int n = t.size(), r = t.rank();
  RingStep step(t, static_cast<std::byte*>(data), count, dtype, op, options);
  for (int s = 0; s < n - 1; ++s) step.exchange((r - s + n) % n, (r - s - 1 + 2 * n) % n, true);
}

void ring_all_gather(Transport& t, void* data, int64_t count, DType dtype, const RingOptions& options) {
  const int n = t.size(), r = t.rank();
  RingStep step(t, static_cast<std::byte*>(data), count, dtype, ReduceOp::Sum, options);
  for (int s = 0; s < n - 1; ++s) step.exchange((r + 1 - s + n) % n, (r - s + n) % n, false);
}

void ring_all_reduce(Transport& t, void* data, int64_t count, DType dtype, ReduceOp op, const RingOptions& options) {
  ring_reduce_scatter(t, data, count, dtype, op, options);
  ring_all_gather(t, data, count, dtype, options);
}

int64_t ring_min_bytes() {
  static const int64_t v = env::integer("KIRZL_MPI_RING_BYTES").value_or(int64_t{32} << 10);
  return v;
}

int64_t ring_piece_bytes() {
  static const int64_t v = env::integer("KIRZL_MPI_RING_PIECE_BYTES").value_or(RingOptions{}.piece_bytes);
  return v;
}

}  // namespace kirzl::comm::detail
