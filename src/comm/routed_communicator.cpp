// CPU tensors to the host backend, CUDA tensors to the device backend. See routed_communicator.h.
#include "comm/routed_communicator.h"

#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

RoutedCommunicator::RoutedCommunicator(std::shared_ptr<Communicator> host, std::shared_ptr<Communicator> device)
    : host_(std::move(host)), device_(std::move(device)) {
  KIRZL_CHECK(host_ && device_, "RoutedCommunicator: both backends are needed");
  KIRZL_CHECK(host_->rank() == device_->rank() && host_->size() == device_->size(), "RoutedCommunicator: the host backend (rank ",
              host_->rank(), " of ", host_->size(), ") and the device backend (rank ", device_->rank(), " of ",
              device_->size(), ") disagree");
}

Work RoutedCommunicator::all_reduce(Tensor& t, const AllReduceOptions& options) { return pick_(t).all_reduce(t, options); }

Work RoutedCommunicator::broadcast(Tensor& t, const BroadcastOptions& options) { return pick_(t).broadcast(t, options); }

Work RoutedCommunicator::all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) {
  KIRZL_CHECK(out.defined() && in.defined() && out.device() == in.device(), "all_gather: out ", out.describe(), " and in ",
              in.describe(), " must be on the same device");
  return pick_(in).all_gather(out, in, options);
}

Work RoutedCommunicator::reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) {
  KIRZL_CHECK(out.defined() && in.defined() && out.device() == in.device(), "reduce_scatter: out ", out.describe(),
              " and in ", in.describe(), " must be on the same device");
  return pick_(in).reduce_scatter(out, in, options);
}

Work RoutedCommunicator::barrier(const BarrierOptions& options) {
  // Both backends take part, so that each keeps seeing the same sequence on every rank.
  device_->barrier(options).synchronize();
  return host_->barrier(options);
}

std::shared_ptr<Communicator> RoutedCommunicator::split(int color, int key) {
  auto h = host_->split(color, key);
  auto d = device_->split(color, key);
  if (!h || !d) return nullptr;
  return std::make_shared<RoutedCommunicator>(h, d);
}

}  // namespace kirzl::comm::detail
