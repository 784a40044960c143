// SyncBatchNorm and the differentiable all-reduce it is built from.
#include "kirzl/nn/sync_batch_norm.hpp"

#include "kirzl/autograd.hpp"
#include "kirzl/ops.hpp"

namespace kirzl {

namespace comm {

Tensor all_reduce_sum_with_grad(const Tensor& x, const std::shared_ptr<Communicator>& comm) {
  KIRZL_CHECK(comm != nullptr, "all_reduce_sum_with_grad: the communicator is null");
  Tensor out = x.detach().contiguous().clone();
  comm->all_reduce(out, {.op = ReduceOp::Sum, .tag = "all_reduce_sum_with_grad forward", .blocking = true});
  // d(sum_k x_k)/dx_r = I on every rank, so rank r's input gradient is the sum of all ranks'
  // output gradients.
  autograd::record("all_reduce_sum_with_grad", out, {x}, [comm](const autograd::GradContext& ctx) {
    Tensor g = ctx.grad().contiguous().clone();
    comm->all_reduce(g, {.op = ReduceOp::Sum, .tag = "all_reduce_sum_with_grad backward", .blocking = true});
    return std::vector<Tensor>{g};
  });
  return out;
}

}  // namespace comm

namespace nn {

SyncBatchNorm::SyncBatchNorm(int64_t c, std::shared_ptr<comm::Communicator> comm, const BatchNormOptions& o)
    : BatchNorm2d(c, o), comm_(std::move(comm)) {
  KIRZL_CHECK(comm_ != nullptr, "SyncBatchNorm: the communicator is null");
}

Tensor SyncBatchNorm::forward(const Tensor& x) {
  if (!is_training() || comm_->size() == 1) return BatchNorm2d::forward(x);
  KIRZL_CHECK(x.defined() && x.dim() == 4, "SyncBatchNorm: expected a 4-D input [N, C, H, W], got ", x.describe());
  KIRZL_CHECK(x.size(1) == num_features, "SyncBatchNorm: input has ", x.size(1), " channels but the layer expects ",
              num_features, " (input ", x.describe(), ")");
  const int64_t c = num_features;
  // Counts differ between ranks when their batches do; the global count is summed too.
  Tensor local_count = full({1}, static_cast<double>(x.numel() / c), {.dtype = x.dtype()});
  Tensor count = comm::all_reduce_sum_with_grad(local_count, comm_);
  const double m = count.item();
  KIRZL_CHECK(m > 1, "SyncBatchNorm: need more than one value per channel over all ranks, got ", m, " (input ",
              x.describe(), ")");
  // Two passes (mean, then squared deviations) for the same accuracy as BatchNorm2d.
  Tensor mean = comm::all_reduce_sum_with_grad(sum(x, {0, 2, 3}), comm_) * (1.0 / m);
  Tensor centred = x - mean.reshape({1, c, 1, 1});
  Tensor var = comm::all_reduce_sum_with_grad(sum(centred * centred, {0, 2, 3}), comm_) * (1.0 / m);
  Tensor y = centred * rsqrt(var + options.eps).reshape({1, c, 1, 1});
  if (options.affine) y = y * weight.reshape({1, c, 1, 1}) + bias.reshape({1, c, 1, 1});
  if (options.track_running_stats) {
    NoGradGuard g;
    const double mom = options.momentum;
    running_mean.mul_(1.0 - mom).add_(mean.detach(), mom);
    running_var.mul_(1.0 - mom).add_(var.detach() * (m / (m - 1.0)), mom);  // unbiased, as BatchNorm2d
    num_batches_tracked.add_(ones({}, {.dtype = DType::i64, .device = num_batches_tracked.device()}));
  }
  return y;
}

std::string SyncBatchNorm::repr() const {
  return "Sync" + BatchNorm2d::repr() + " over " + std::to_string(comm_->size()) + " ranks";
}

}  // namespace nn
}  // namespace kirzl
