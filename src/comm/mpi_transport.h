// Internal (MPI backend only): the ring's Transport (transport.h) over MPI point-to-point
// messages on the communicator's own MPI_Comm, with a tag of their own. Waiting is the
// communicator's: it polls with the collective's deadline and answers failure notices while it
// waits (Note [mpi timeouts]), and on failure keeps the buffers alive for good.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>
#include <vector>

#include "comm/mpi_runtime.h"
#include "comm/transport.h"

namespace kirzl::comm::detail {

// Waits for `count` requests at `reqs` (with `block` false: tests them once, and says whether they
// have all completed); throws on failure, after handing `keep` to keep_forever.
using MpiWaitAll = std::function<bool(MPI_Request* reqs, int count, bool block, std::shared_ptr<void> keep)>;

class MpiTransport final : public Transport {
 public:
  // `keep`: what the caller's receives write into (kept alive with the ring's own buffers).
  MpiTransport(MpiRuntime& rt, MPI_Comm comm, MpiWaitAll wait_all, std::shared_ptr<void> keep);
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Channel c travels with MPI tag kRingTag + c (mpi_tags.h).
  Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) override;
  Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) override;
  void wait(std::span<const Request> requests) override;
  bool test(std::span<const Request> requests) override;
  void keep_alive(std::shared_ptr<void> buffer) override { hold_->push_back(std::move(buffer)); }

 private:
  MpiRuntime& rt_;
  const MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  MpiWaitAll wait_all_;
  // Waits or tests `requests` (block: see MpiWaitAll).
  bool complete_(std::span<const Request> requests, bool block);

  std::vector<MPI_Request> reqs_;
  std::vector<MPI_Request> batch_;  // complete_'s gathered requests, reused
  std::shared_ptr<std::vector<std::shared_ptr<void>>> hold_;
};

}  // namespace kirzl::comm::detail
