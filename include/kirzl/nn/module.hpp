// nn::Module: named parameters, buffers and submodules; train/eval; device/dtype moves; state dicts.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kirzl/state_dict.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::nn {

/// Base of every layer and model. A module owns its parameters (leaf tensors that require grad),
/// buffers (state that is saved but not trained, e.g. running statistics) and submodules, each
/// under a name, in registration order — an order the data-parallel reducer relies on, so it
/// is stable.
///
/// Modules move but do not copy (a copy would silently share parameters). Parameter tensors are
/// handles: `to()` and `load_state_dict()` change them in place, so handles held by optimizers or
/// DDP stay valid. A module is not thread-safe; use one per thread or guard it.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  /// Moves the parameters, buffers and children (handles: other holders see the moved module's).
  Module(Module&&) = default;
  /// Moves the parameters, buffers and children (handles: other holders see the moved module's).
  Module& operator=(Module&&) = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation. The default throws Error{Unsupported}: containers like ModuleList have none.
  virtual Tensor forward(const Tensor& x);
  /// Runs the forward pre-hooks, then forward(x). Call child modules this way (`(*fc1)(x)`, not
  /// `fc1->forward(x)`), so that hooks on them fire: sharded DDP waits for a child's parameters
  /// in its hook (Note [parameter gather overlap]).
  Tensor operator()(const Tensor& x) {
    run_forward_pre_hooks();
    return forward(x);
  }

  /// A hook run by operator() before forward(), with the module it is registered on.
  using ForwardPreHook = std::function<void(Module&)>;
  /// Registers `hook` to run before every call through operator() (and run_forward_pre_hooks()),
  /// after the hooks registered before it. Returns a handle for remove_forward_pre_hook(); handles
  /// are unique in the process and stay valid when the module is moved (the hooks move with it).
  uint64_t register_forward_pre_hook(ForwardPreHook hook);
  /// Removes the hook with `handle`; returns false when this module has no such hook.
  bool remove_forward_pre_hook(uint64_t handle);
  /// Runs this module's forward pre-hooks in registration order (not its children's). For code
  /// that reads a module's parameters without calling it (GPT::fused_loss uses its blocks'
  /// weights in fused ops): call this first, as operator() would. A hook that throws stops the
  /// rest and propagates.
  void run_forward_pre_hooks();
  /// "Linear(in_features=784, out_features=256, bias=true)".
  virtual std::string repr() const;
  /// A multi-line tree of this module and its children.
  std::string str() const;

  /// Parameters of this module then its children's (depth first), in registration order.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// Same, with dotted names: "0.weight", "encoder.layers.1.bias".
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  /// Buffers of this module then its children's (depth first), in registration order.
  std::vector<Tensor> buffers(bool recurse = true) const;
  /// Same, with dotted names: "1.running_mean".
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  /// Direct children in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  /// Total number of parameter elements. Virtual so that a model whose parameters hold storage
  /// that is not part of the model (models::GPT's vocabulary padding) can report its true size.
  virtual int64_t num_parameters() const;

  /// Training mode for this module and all children (affects Dropout and BatchNorm).
  virtual void train(bool on = true);
  /// Evaluation mode: train(false).
  void eval() { train(false); }
  /// True in training mode (the default), false after eval().
  bool is_training() const { return training_; }

  /// Moves every parameter and buffer to `device`, in place (see class comment).
  Module& to(Device device);
  /// Converts floating parameters and buffers to `dtype`, in place; integer buffers are kept.
  Module& to(DType dtype);

  /// Parameters and buffers by dotted name (handles, not copies).
  StateDict state_dict() const;
  /// Copies values from `dict` into the parameters and buffers (in place, converting dtype and
  /// device). strict: every key must match exactly; otherwise unknown keys are ignored and
  /// missing ones keep their values. Throws Error{InvalidArgument} listing missing, unexpected and
  /// mis-shaped keys before changing anything.
  void load_state_dict(const StateDict& dict, bool strict = true);
  /// Throws exactly what load_state_dict(dict, strict) would throw, and changes nothing (so that
  /// several ranks can check first and then all load: io::load_checkpoint).
  void check_state_dict(const StateDict& dict, bool strict = true) const;

  /// Clears gradients: set_to_none drops them; otherwise zeroes them in place (keeps views).
  void zero_grad(bool set_to_none = true);

 protected:
  /// Registers a parameter (sets requires_grad) and returns the handle. Names must be unique.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers a buffer (saved in the state dict, moved by to(), not trained); returns the handle.
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Registers a child module under `name` and returns it, typed.
  template <std::derived_from<Module> M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  /// Registers a child module under `name` (names must be unique).
  void add_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool recurse, std::vector<std::pair<std::string, Tensor>>& out) const;
  void str_rec(std::string& out, int indent) const;

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<uint64_t, ForwardPreHook>> forward_pre_hooks_;  // (handle, hook), in registration order
  bool training_ = true;
};

/// A shared_ptr holding a moved-in module value: `as_module(Linear(4, 2))`.
template <std::derived_from<Module> M>
std::shared_ptr<M> as_module(M&& m) {
  return std::make_shared<std::decay_t<M>>(std::forward<M>(m));
}

}  // namespace kirzl::nn
