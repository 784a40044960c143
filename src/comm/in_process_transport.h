// Internal: a Transport between the threads of one process — one mailbox (a FIFO of messages) per
// ordered pair of ranks and channel. A send copies its bytes into the receiver's mailbox at once (sends
// complete immediately); a receive is filled, in posting order, by its own rank's thread when it
// waits or tests, so no thread ever writes another rank's buffers and the run is deterministic. It lets the
// ring algorithm (ring.h) be run and tested without MPI.
//
// Failure: a wait gives up at its deadline (Error{Timeout}) and when the peer it needs has left —
// destroyed its transport, e.g. after an error — with nothing left in the mailbox
// (Error{InvalidArgument}, as Note [mpi departure]). test() fails the same way when the peer has
// left, and with Error{Timeout} once its tests have completed nothing for the timeout. A rank that fails and leaves therefore fails
// every rank that waits for it, and those leave in turn: an error anywhere reaches every rank.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "comm/transport.h"

namespace kirzl::comm::detail {

struct InProcessMailboxes;

struct InProcessTransportOptions {
  // How long one wait() may take, and how long test() may go on completing nothing.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

class InProcessTransport final : public Transport {
 public:
  InProcessTransport(std::shared_ptr<InProcessMailboxes> boxes, int rank, InProcessTransportOptions options);
  // Leaves the group: peers waiting for a message this rank will never send fail at once.
  ~InProcessTransport() override;
  InProcessTransport(const InProcessTransport&) = delete;
  InProcessTransport& operator=(const InProcessTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override;
  Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) override;
  Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) override;
  void wait(std::span<const Request> requests) override;
  bool test(std::span<const Request> requests) override;
  void keep_alive(std::shared_ptr<void>) override {}  // receives are filled by this rank's own thread

 private:
  struct Posted {
    int peer = -1;  // a receive's sender; -1 for a send (complete when posted)
    int channel = 0;
    std::byte* data = nullptr;
    int64_t bytes = 0;
    bool done = false;
  };
  // Completes the receives from `peer` on `channel` posted before and including `upto`, in order;
  // Error{Timeout} at `deadline`. Without a deadline it does not block: it completes those whose
  // messages have arrived, and says whether `upto` is complete.
  bool complete_receives(int peer, int channel, Request upto,
                         std::optional<std::chrono::steady_clock::time_point> deadline);
  const Posted& posted(Request q) const;

  std::shared_ptr<InProcessMailboxes> boxes_;
  const int rank_;
  const InProcessTransportOptions options_;
  std::vector<Posted> posted_;
  Request first_open_ = 0;  // posted_[0, first_open_) are all done
  int64_t received_ = 0;  // receives completed so far
  // Since when test() has completed nothing (Error{Timeout} after options_.timeout).
  std::optional<std::chrono::steady_clock::time_point> stalled_since_;
};

// One transport per rank of a group of `n` (n >= 1); rank r drives transports[r] from its own thread.
std::vector<std::unique_ptr<InProcessTransport>> make_in_process_transports(int n, InProcessTransportOptions options = {});

}  // namespace kirzl::comm::detail
