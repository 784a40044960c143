// Internal: the world communicator when NCCL is in use. CUDA tensors go to the device backend
// (NCCL), CPU tensors to the host backend (MPI, or in-process at size 1), so code written for the
// CPU (metrics, evaluation sums, the init preflight) keeps working on a GPU world. Each backend
// keeps its own sequence numbers; every rank issues the same collectives in the same order, so
// each backend sees the same sub-sequence on every rank. Barriers and splits go to both.
#pragma once

#include <memory>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

class RoutedCommunicator final : public Communicator {
 public:
  RoutedCommunicator(std::shared_ptr<Communicator> host, std::shared_ptr<Communicator> device);

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  /// "nccl+mpi" or "nccl+inprocess".
  std::string backend() const override { return device_->backend() + "+" + host_->backend(); }
  std::chrono::milliseconds default_timeout() const override { return host_->default_timeout(); }
  Device device() const override { return device_->device(); }

  Work all_reduce(Tensor& t, const AllReduceOptions& options) override;
  Work broadcast(Tensor& t, const BroadcastOptions& options) override;
  Work all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) override;
  Work reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) override;
  /// A host barrier (every rank has reached it on the host), after the device backend's barrier
  /// has been ordered on the caller's stream.
  Work barrier(const BarrierOptions& options) override;
  std::shared_ptr<Communicator> split(int color, int key) override;

  Communicator& host() { return *host_; }
  Communicator& device_backend() { return *device_; }

 private:
  Communicator& pick_(const Tensor& a) { return a.defined() && a.device().is_cuda() ? *device_ : *host_; }
  std::shared_ptr<Communicator> host_, device_;
};

}  // namespace kirzl::comm::detail
