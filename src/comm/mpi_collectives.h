// Internal (MPI backend only): the MPI calls of each collective on one communicator — the header
// check that every rank issued the same collective (Note [mpi collective protocol]) and the data
// phase: nonblocking MPI collectives, chunked to MPI's int counts, with the ring (ring.h) for
// large all-reduces. It only posts requests; waiting for them (deadline, failure notices,
// Note [mpi timeouts]) is the communicator's, passed in as WaitAll.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>

#include "comm/collective.h"
#include "comm/flight_recorder.h"
#include "comm/hierarchical.h"
#include "comm/mpi_runtime.h"

namespace kirzl::comm::detail {

// The phases a wait names in its errors. The arrival phase may wait long for a late rank.
inline constexpr const char* kMpiArrivalPhase = "waiting for the other ranks to arrive";

// The largest all-reduce, in bytes, that travels with the arrival check on a communicator of
// `size` ranks (KIRZL_MPI_FUSED_BYTES / (size - 1), a multiple of 8); 0 where the arrival is the
// MIN header (Note [fused small all-reduce]).
int64_t fused_payload_bytes(int size);
// The largest fused payload whose arrival message is sent whole; longer ones send a tail (Note
// [arrival tail]).
int64_t arrival_whole_payload_bytes();

// How an all-reduce's data is exchanged (Note [mpi all-reduce choice], mpi_collectives.cpp).
enum class AllReduceAlgorithm { Mpi, Ring, Hierarchical };

class MpiCollectives {
 public:
  // Waits for `count` requests at `reqs` until `deadline`, naming collective `d` and `phase` in
  // its errors; on failure it hands `keep` (what MPI may still write) to keep_forever and throws.
  // With `block` false it only tests them, once, with the same checks, and returns whether they
  // have all completed (blocking, it returns true).
  using WaitAll = std::function<bool(MPI_Request* reqs, int count, bool block, Clock::time_point deadline,
                                     const CollectiveDesc& d, const char* phase, std::shared_ptr<void> keep)>;

  // `nodes`: where the ranks of `comm` are (mpi_topology.h).
  MpiCollectives(MpiRuntime& rt, MPI_Comm comm, int rank, int size, NodeMap nodes, WaitAll wait_all);

  // Note [mpi collective protocol]: returns once every rank has issued `d`; Error{InvalidArgument}
  // naming both sides when the ranks disagree. Doubles as the barrier. With `t` (the host tensor
  // of an all-reduce), an all-reduce small enough to travel with the header is reduced in place in
  // the same exchange, and the result is true: there is no data phase left (Note [fused small
  // all-reduce]).
  bool arrive(const CollectiveDesc& d, Tensor* t = nullptr);
  // The data phase of `d` on host memory: all_reduce and broadcast in place on `out`, all_gather
  // and reduce_scatter from `in` into `out`.
  void exchange(const CollectiveDesc& d, Tensor& out, const Tensor& in);
  // The algorithm of an all-reduce of `bytes` bytes on this communicator (KIRZL_ALLREDUCE).
  AllReduceAlgorithm all_reduce_algorithm(int64_t bytes) const;

 private:
  void wait_(MPI_Request& req, Clock::time_point deadline, const CollectiveDesc& d, const char* phase,
             std::shared_ptr<void> keep) {
    wait_all_(&req, 1, true, deadline, d, phase, std::move(keep));
  }
  void all_reduce_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline);
  void chunked_allreduce_(void* data, int64_t count, MPI_Datatype type, size_t esize, const CollectiveDesc& d,
                          Clock::time_point deadline, std::shared_ptr<void> keep);
  void broadcast_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline);
  void all_gather_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline);
  void reduce_scatter_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline);
  bool arrive_fused_(const CollectiveDesc& d, Tensor* t);
  void arrive_min_(const CollectiveDesc& d);
  void check_headers_(const CollectiveDesc& d, int64_t slot);
  [[noreturn]] void fail_mismatch_(const CollectiveDesc& d, const int64_t* headers, size_t stride);

  MpiRuntime& rt_;
  const MPI_Comm comm_;
  const int rank_, size_;
  WaitAll wait_all_;
  const NodeMap nodes_;
  const std::optional<std::string> flat_only_;  // why the hierarchical all-reduce cannot run here
  RingScratch ring_scratch_;                    // reused by every ring all-reduce; dropped after a failed one
  const int64_t fused_bytes_;                   // largest payload of an arrival message; 0: the MIN header
  // The arrival messages of every rank, size_ slots of header + fused_bytes_ (Note [fused small
  // all-reduce]), reused; dropped after a failed arrival, which MPI may still write into.
  std::shared_ptr<std::byte[]> arrival_;
};

}  // namespace kirzl::comm::detail
