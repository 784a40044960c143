// Internal: the point-to-point transport that the ring algorithm (ring.h) runs over — posting
// sends and receives of byte ranges to and from a peer, testing them without blocking, and waiting
// for them with a deadline. The
// MPI backend implements it over MPI_Isend/MPI_Irecv (mpi_transport.h); the in-process transport
// (in_process_transport.h) runs the same algorithm between threads, deterministically, for tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace kirzl::comm::detail {

class Transport {
 public:
  // A posted send or receive, valid within one transport.
  using Request = size_t;

  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Messages travel on one of kChannels channels, independent of each other: the messages from
  // one peer on one channel arrive in the order they were sent, each into the receive posted in
  // the same position on that channel, whatever is posted on the other channels meanwhile (the
  // hierarchical pipeline runs each of its lanes on a channel of its own, Note [hierarchical
  // pipeline]).
  static constexpr int kChannels = 4;

  // Posts a send of `bytes` bytes at `data` to rank `peer` on `channel`; `data` must stay
  // unchanged until the request has completed.
  virtual Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) = 0;
  // Posts a receive of exactly `bytes` bytes from rank `peer` on `channel` into `data`.
  virtual Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) = 0;
  // Blocks until every request in `requests` has completed. Throws kirzl::Error when the
  // transport fails, a peer is gone, or the deadline of the transport passes; the requests still
  // outstanding are then abandoned (see keep_alive).
  virtual void wait(std::span<const Request> requests) = 0;
  // Does not block: completes what can be completed now, and says whether every request in
  // `requests` has completed. Throws as wait() does — when the transport fails, a peer it needs
  // is gone, or the deadline passes without progress — so that a caller that only tests (a
  // nonblocking schedule, ring_schedule.h) never hangs either.
  virtual bool test(std::span<const Request> requests) = 0;
  // `buffer` is written by posted receives: the transport keeps it alive for as long as they may
  // write it (after a failure, possibly until the process ends).
  virtual void keep_alive(std::shared_ptr<void> buffer) = 0;
};

}  // namespace kirzl::comm::detail
