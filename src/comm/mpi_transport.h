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

// Waits for `count` requests at `reqs`; throws on failure, after handing `keep` to keep_forever.
using MpiWaitAll = std::function<void(MPI_Request* reqs, int count, std::shared_ptr<void> keep)>;

class MpiTransport final : public Transport {
 public:
  // `keep`: what the caller's receives write into (kept alive with the ring's own buffers).
  MpiTransport(MpiRuntime& rt, MPI_Comm comm, MpiWaitAll wait_all, std::shared_ptr<void> keep);
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Request send(int peer, const std::byte* data, int64_t bytes) override;
  Request receive(int peer, std::byte* data, int64_t bytes) override;
  void wait(std::span<const Request> requests) override;
  void keep_alive(std::shared_ptr<void> buffer) override { hold_->push_back(std::move(buffer)); }

 private:
  MpiRuntime& rt_;
  const MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  MpiWaitAll wait_all_;
  std::vector<MPI_Request> reqs_;
  std::shared_ptr<std::vector<std::shared_ptr<void>>> hold_;
};

}  // namespace kirzl::comm::detail
