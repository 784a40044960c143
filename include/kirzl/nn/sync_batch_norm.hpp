// SyncBatchNorm: batch normalisation whose statistics cover the batches of every rank.
#pragma once

#include <memory>

#include "kirzl/comm.hpp"
#include "kirzl/nn/layers.hpp"

namespace kirzl {

namespace comm {
/// Differentiable sum over ranks: returns a new tensor holding the sum of `x` over all ranks of
/// `comm`; its backward sums the incoming gradients over ranks the same way. Blocking (waits for
/// the collective in forward and in backward), so every rank must call it — and run its
/// backward — in the same order. `x` is not modified.
Tensor all_reduce_sum_with_grad(const Tensor& x, const std::shared_ptr<Communicator>& comm);
}  // namespace comm

namespace nn {

/// BatchNorm2d whose training-mode mean and variance are taken over the union of all ranks'
/// batches (two small all-reduces per forward and two per backward), so N ranks with batch b
/// normalise exactly like one process with batch N*b. In eval mode, or with one rank, it is
/// BatchNorm2d. Parameters and buffers have BatchNorm2d's names, so state dicts are
/// interchangeable. Every rank must run forward and backward in the same order.
class SyncBatchNorm : public BatchNorm2d {
 public:
  /// A BatchNorm2d over `num_features` channels whose statistics are reduced over `comm`'s ranks
  /// (shared ownership: the communicator lives at least as long as the layer). Throws
  /// Error{InvalidArgument} for a null `comm` and for the options BatchNorm2d rejects
  /// (num_features <= 0, momentum outside [0, 1], eps <= 0).
  SyncBatchNorm(int64_t num_features, std::shared_ptr<comm::Communicator> comm, const BatchNormOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;

 private:
  std::shared_ptr<comm::Communicator> comm_;
};

}  // namespace nn
}  // namespace kirzl
