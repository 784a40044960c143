// LAMB: layer-wise adaptive large-batch optimization (You et al. 2019, "Large Batch
// Optimization for Deep Learning: Training BERT in 76 minutes").
#pragma once

#include <utility>
#include <vector>

#include "kirzl/optim/optimizer.hpp"

namespace kirzl::kernels {
struct OptimLists;
struct LambArgs;
}  // namespace kirzl::kernels

namespace kirzl::optim {

/// Options of LAMB: `LAMB opt(params, {.lr = 1e-3, .weight_decay = 0.01})`.
struct LAMBOptions {
  double lr = 1e-3;                              ///< >= 0
  std::pair<double, double> betas{0.9, 0.999};   ///< each in [0, 1)
  double eps = 1e-6;                             ///< > 0
  double weight_decay = 0.01;                    ///< decoupled, inside the trust-ratio update; >= 0
};

/// LAMB. For each parameter θ (one "layer" = one tensor) with gradient g, at its step t:
///
///     m = β1 m + (1 - β1) g
///     v = β2 v + (1 - β2) g²
///     r = (m / (1 - β1^t)) / (sqrt(v) / sqrt(1 - β2^t) + eps) + λ θ
///     trust = ||θ|| / ||r||   (2-norms over the whole tensor; 1 when either norm is 0)
///     θ = θ - lr · trust · r
///
/// No clamping of ||θ|| (the paper's φ is the identity). Over a sharded state
/// (DistributedDataParallel::make_optimizer with DDPOptions::shard; Note [sharded optimizer])
/// each parameter is a piece of a whole tensor, and ||θ|| and ||r|| are the norms of the whole
/// tensor, summed over the pieces on every rank: one small all-reduce per step (on CUDA also one
/// synchronising copy of the partial norms to the host; Note [sharded LAMB on CUDA]). State per
/// parameter: "exp_avg",
/// "exp_avg_sq". Each update reads the parameter twice (norms first, then the update); the norms
/// are summed in a fixed order, so results do not depend on the thread count. See Optimizer
/// for in-place behaviour and thread safety.
class LAMB final : public Optimizer {
 public:
  /// The options type: `LAMB::Options{.lr = 1e-3}`.
  using Options = LAMBOptions;
  /// One param group of `params` (handles: the optimizer updates these very tensors), with the
  /// options' lr and weight_decay. No state is allocated until the first step(). Throws
  /// Error{InvalidArgument} for an option out of range, an empty list, or a parameter that is
  /// undefined, not floating, or listed twice.
  LAMB(std::vector<Tensor> params, LAMBOptions options = {});
  /// Several param groups; a group's lr / weight_decay, when set, override the options' for its
  /// parameters. Throws as the constructor above, naming the group.
  LAMB(std::vector<ParamGroup> groups, LAMBOptions options = {});
  /// lr and weight_decay here are the defaults; the groups hold the live values.
  const LAMBOptions& options() const { return options_; }

 protected:
  void update(const Group& group, std::vector<DeviceItem>& items) override;
  void update_all(std::vector<GroupItems>& all) override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  std::vector<OptionField> option_fields() const override;
  void set_option_fields(const std::vector<OptionField>& fields) override;
  void check_option_fields(const std::vector<OptionField>& fields) const override;

 private:
  // The kernel arguments of one update (internal types of src/kernels/optim_update.h).
  static kernels::LambArgs args_of(const Group& group, const LAMBOptions& options);
  static kernels::OptimLists lists_of(std::vector<DeviceItem>& items, std::vector<int64_t>& steps);
  LAMBOptions options_;
};

}  // namespace kirzl::optim
