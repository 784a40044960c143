// Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay.
#pragma once

#include <vector>

#include "kirzl/optim/optimizer.hpp"

namespace kirzl::optim {

/// Options of SGD: `SGD opt(params, {.lr = 0.1, .momentum = 0.9})`.
struct SGDOptions {
  double lr = 1e-3;            ///< >= 0
  double momentum = 0.0;       ///< >= 0
  double dampening = 0.0;      ///< must be 0 with nesterov
  double weight_decay = 0.0;   ///< L2 penalty added to the gradient; >= 0
  bool nesterov = false;       ///< requires momentum > 0 and dampening == 0
  bool maximize = false;       ///< ascend the objective instead
};

/// SGD, following PyTorch's torch.optim.SGD. For each parameter θ with gradient ∇, at step t:
///
///     g = maximize ? -∇ : ∇
///     if weight_decay λ != 0:  g = g + λ θ
///     if momentum μ != 0:
///         b = (t == 1, i.e. no buffer yet) ? g : μ b + (1 - dampening) g
///         g = nesterov ? g + μ b : b
///     θ = θ - lr g
///
/// (As in PyTorch's implementation, `maximize` negates the gradient before weight decay, so
/// weight decay still shrinks the weights.) State per parameter: "momentum_buffer" when
/// momentum != 0. Options are validated at construction (Error{InvalidArgument} naming the
/// option). See Optimizer for in-place behaviour and thread safety.
class SGD final : public Optimizer {
 public:
  /// The options type: `SGD::Options{.lr = 1e-3}`.
  using Options = SGDOptions;
  /// One param group of `params` (handles: the optimizer updates these very tensors), with the
  /// options' lr and weight_decay. No momentum buffer is allocated until the first step(). Throws
  /// Error{InvalidArgument} for an option out of range (nesterov without momentum > 0 and
  /// dampening == 0 included), an empty list, or a parameter that is undefined, not floating, or
  /// listed twice.
  SGD(std::vector<Tensor> params, SGDOptions options = {});
  /// Several param groups; a group's lr / weight_decay, when set, override the options' for its
  /// parameters. Throws as the constructor above, naming the group.
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});
  /// lr and weight_decay here are the defaults; the groups hold the live values.
  const SGDOptions& options() const { return options_; }

 protected:
  void update(const Group& group, std::vector<DeviceItem>& items) override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
  std::vector<OptionField> option_fields() const override;
  void set_option_fields(const std::vector<OptionField>& fields) override;
  void check_option_fields(const std::vector<OptionField>& fields) const override;

 private:
  SGDOptions options_;
};

}  // namespace kirzl::optim
