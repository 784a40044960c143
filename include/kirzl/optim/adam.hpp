// Adam (L2 weight decay coupled into the gradient) and AdamW (decoupled weight decay).
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "kirzl/optim/optimizer.hpp"

namespace kirzl::optim {

/// Options of Adam: `Adam opt(params, {.lr = 1e-3, .betas = {0.9, 0.95}})`.
struct AdamOptions {
  double lr = 1e-3;                              ///< >= 0
  std::pair<double, double> betas{0.9, 0.999};   ///< each in [0, 1)
  double eps = 1e-8;                             ///< > 0
  double weight_decay = 0.0;                     ///< L2 penalty added to the gradient; >= 0
  bool amsgrad = false;                          ///< use the maximum of past second moments (AMSGrad)
  bool maximize = false;                         ///< ascend the objective instead of descending
  /// Keeps the step counts and the learning rate on the parameters' device, where the kernel
  /// reads them, so that step() can be captured into a cuda::Graph and every replay advances the
  /// step counts (Note [capturable adam]). set_lr() and the schedulers write the new lr to the
  /// device on the caller's current stream (between replays; inside a capture they throw
  /// Error{Unsupported}). The first step must run before a capture (it creates
  /// the device counters). The same numbers as false (on CUDA up to the last bit of the bias
  /// corrections, which the device computes). state_dict() and step_count() read the device's step
  /// counts, so they include the replays. Only lr and the step counts live on the device: betas,
  /// eps and weight decay are fixed into a graph when it is captured, so a load_state_dict() or
  /// option change afterwards reaches eager steps and new captures, not an existing graph.
  bool capturable = false;
};

/// Options of AdamW: as Adam's, but weight decay is decoupled and defaults to 0.01.
struct AdamWOptions {
  double lr = 1e-3;                              ///< >= 0
  std::pair<double, double> betas{0.9, 0.999};   ///< each in [0, 1)
  double eps = 1e-8;                             ///< > 0
  double weight_decay = 0.01;  ///< decoupled: θ *= 1 - lr λ before the Adam step; >= 0
  bool amsgrad = false;        ///< use the maximum of past second moments (AMSGrad)
  bool maximize = false;       ///< ascend the objective instead of descending
  /// Keeps the step counts and the learning rate on the parameters' device, where the kernel
  /// reads them, so that step() can be captured into a cuda::Graph and every replay advances the
  /// step counts (Note [capturable adam]). set_lr() and the schedulers write the new lr to the
  /// device on the caller's current stream (between replays; inside a capture they throw
  /// Error{Unsupported}). The first step must run before a capture (it creates
  /// the device counters). The same numbers as false (on CUDA up to the last bit of the bias
  /// corrections, which the device computes). state_dict() and step_count() read the device's step
  /// counts, so they include the replays. Only lr and the step counts live on the device: betas,
  /// eps and weight decay are fixed into a graph when it is captured, so a load_state_dict() or
  /// option change afterwards reaches eager steps and new captures, not an existing graph.
  bool capturable = false;
};

namespace detail {

/// What Adam and AdamW share: they differ only in their options' type and in whether weight decay
/// is decoupled (AdamW) or added to the gradient (Adam). Use Adam or AdamW.
template <typename OptionsT, bool kDecoupled>
class AdamFamily : public Optimizer {
 public:
  /// The options type: `AdamW::Options{.lr = 1e-3}`.
  using Options = OptionsT;
  /// One param group of `params` (handles: the optimizer updates these very tensors), with the
  /// options' lr and weight_decay. No state is allocated until the first step(). Throws
  /// Error{InvalidArgument} for an option out of range, an empty list, or a parameter that is
  /// undefined, not floating, or listed twice.
  AdamFamily(std::vector<Tensor> params, OptionsT options = {});
  /// Several param groups; a group's lr / weight_decay, when set, override the options' for its
  /// parameters. Throws as the constructor above, naming the group.
  AdamFamily(std::vector<ParamGroup> groups, OptionsT options = {});
  /// lr and weight_decay here are the defaults; the groups hold the live values.
  const OptionsT& options() const { return options_; }

 protected:
  void update(const Group& group, std::vector<DeviceItem>& items) override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  std::vector<OptionField> option_fields() const override;
  void set_option_fields(const std::vector<OptionField>& fields) override;
  void check_option_fields(const std::vector<OptionField>& fields) const override;
  const char* capture_refusal() const override;
  void lr_changed(const Group& group) override;
  void state_loaded() override;
  void device_step_counts(std::vector<int64_t>& counts) const override;

 private:
  /// The device step counts (f64, one per parameter of the group) and lr of one group on one
  /// device (Note [capturable adam]).
  struct DeviceScalars {
    Tensor steps;
    Tensor lr;
  };
  DeviceScalars& device_scalars(const Group& group, const std::vector<DeviceItem>& items);
  OptionsT options_;
  // By (the group's first_index, the device's index; -1 for the CPU).
  std::map<std::pair<int64_t, int>, DeviceScalars> device_scalars_;
};

extern template class AdamFamily<AdamOptions, false>;
extern template class AdamFamily<AdamWOptions, true>;

}  // namespace detail

/// Adam, following PyTorch's torch.optim.Adam. For each parameter θ with gradient ∇, at its
/// step t (1 on the first update), with m, v (and v_max) starting at zero:
///
///     g = maximize ? -∇ : ∇
///     if weight_decay λ != 0:  g = g + λ θ
///     m = β1 m + (1 - β1) g
///     v = β2 v + (1 - β2) g²
///     if amsgrad:  v_max = max(v_max, v)   (over the raw v, as PyTorch does) and use v_max for v
///     θ = θ - (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
///
/// eps is added after the bias correction of sqrt(v). State per parameter: "exp_avg",
/// "exp_avg_sq", and "max_exp_avg_sq" with amsgrad. See Optimizer for in-place behaviour and
/// thread safety. Options are validated at construction (Error{InvalidArgument}).
class Adam final : public detail::AdamFamily<AdamOptions, false> {
 public:
  /// The constructors of AdamFamily: (params, options) or (param groups, options).
  using AdamFamily::AdamFamily;
};

/// AdamW (Loshchilov & Hutter), following PyTorch's torch.optim.AdamW: first
///
///     θ = θ (1 - lr λ)          (decoupled weight decay, λ = the group's weight_decay)
///
/// then exactly Adam's update above with no L2 term in the gradient. Same state as Adam.
class AdamW final : public detail::AdamFamily<AdamWOptions, true> {
 public:
  /// The constructors of AdamFamily: (params, options) or (param groups, options).
  using AdamFamily::AdamFamily;
};

}  // namespace kirzl::optim
