// Optimizer: the base of kirzl's optimizers — parameter groups, per-parameter state, step,
// zero_grad, learning-rate access for schedulers, and state dicts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kirzl/state_dict.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::optim {

/// A set of parameters that share hyper-parameters. `lr` and `weight_decay` override the
/// optimizer's options for this group; unset ones take the optimizer's defaults.
/// The tensors are handles: the optimizer updates the very tensors the caller (a module, DDP)
/// holds.
struct ParamGroup {
  std::vector<Tensor> params = {};                    ///< the parameters (handles)
  std::optional<double> lr = std::nullopt;            ///< this group's learning rate, if not the default
  std::optional<double> weight_decay = std::nullopt;  ///< this group's weight decay, if not the default
};

/// Base class of SGD, Adam, AdamW and LAMB.
///
/// Parameters are numbered in group order (group 0's first, ...); that index names their state in
/// state_dict(). Every parameter must be a defined floating tensor and appear once.
///
/// In-place behaviour: step() writes new values into each parameter's own memory (through its
/// data pointer, or through copy_ for a non-contiguous one), so every handle and view of a
/// parameter stays valid and sees the update. Gradients are only read by step().
///
/// Per-parameter state (moments, momentum buffers) is created lazily on a parameter's first step,
/// on the parameter's device: f64 for f64 parameters, f32 for every other floating dtype.
///
/// Master weights (Note [master weights] in kirzl/amp.hpp): a bf16 or f16 parameter gets an f32
/// copy in its state, "master" (initialised from the parameter on its first step). Every step
/// updates the master in f32 and writes its rounded value into the parameter, so updates smaller
/// than the parameter's precision accumulate instead of being rounded away. The master is the
/// source of truth: state_dict() carries it ("state.<i>.master"), and a parameter changed
/// outside the optimizer after its first step is overwritten by the next step (restore the
/// optimizer's state together with the model's).
///
/// Devices: the parameters of a group are updated one device at a time, by the optimizer's
/// multi-tensor kernel for that device: plain loops on the CPU; on CUDA fused multi-tensor kernels
/// (Note [multi-tensor apply] in src/kernels/cuda/): one or a few launches per param group and
/// device, issued on the current stream of the device; step() returns without waiting for them
/// and reads nothing back to the host (the learning rate and bias corrections are kernel
/// arguments). A group may mix devices and dtypes. A parameter and
/// its gradient must be on the same device.
///
/// Thread safety: none. One thread at a time may call any method; step() may use several
/// OpenMP threads internally for large CPU parameters.
class Optimizer {
 public:
  /// A named scalar option, as stored in state dicts (booleans as 0/1).
  struct OptionField {
    std::string name;    ///< e.g. "lr", "beta1"
    double value = 0.0;  ///< its value
  };

  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "SGD", "Adam", "AdamW", "LAMB": the prefix of this optimizer's error messages.
  const std::string& name() const { return name_; }

  /// One update of every parameter whose gradient is defined (others, and their state, are left
  /// alone). Runs under NoGradGuard. Increments each updated parameter's step count.
  void step();

  /// set_to_none = true: drops every gradient (grad() becomes undefined).
  /// set_to_none = false: fills each existing gradient with zeros in place, keeping its memory
  /// (e.g. the DDP bucket views that gradients alias).
  void zero_grad(bool set_to_none = true);

  /// Number of param groups (group indices for lr(), set_lr() and the schedulers are 0 .. num_groups() - 1).
  int64_t num_groups() const { return static_cast<int64_t>(groups_.size()); }
  /// Total number of parameters over all groups.
  int64_t num_params() const { return static_cast<int64_t>(state_.size()); }
  /// The parameters of group `group` (handles shared with the caller).
  const std::vector<Tensor>& params(int64_t group = 0) const;

  /// Current learning rate of `group`.
  double lr(int64_t group = 0) const;
  /// Sets the learning rate of `group`, or of every group when group == -1. lr >= 0.
  void set_lr(double lr, int64_t group = -1);
  /// The learning rate `group` had when the optimizer was built (or the one restored by
  /// load_state_dict): the base that schedulers scale.
  double initial_lr(int64_t group = 0) const;
  /// Weight decay of `group` (its override, or the optimizer's default).
  double weight_decay(int64_t group = 0) const;
  /// Number of steps parameter `param_index` has taken (0 before its first update), replays of a
  /// captured step included (a capturable optimizer reads its device counters, which waits for
  /// the device).
  int64_t step_count(int64_t param_index) const;

  /// A copy of the optimizer's state: every tensor in the result is a fresh copy, so later steps
  /// do not change it. Entries (all scalars are 0-d f64 tensors):
  ///   "param_groups.<g>.lr", ".initial_lr", ".weight_decay"  per group;
  ///   "param_groups.<g>.params"  1-D i64 tensor of the group's parameter indices;
  ///   "options.<name>"  the optimizer-wide options (booleans as 0/1);
  ///   "state.<i>.step"  and "state.<i>.<buffer>" (e.g. "state.3.exp_avg") for each parameter
  ///   that has state; the step counts include replays of a captured step (as step_count).
  StateDict state_dict() const;

  /// Restores a state_dict() of an optimizer of the same kind over parameters of the same
  /// shapes in the same groups. Copies the tensors' values into this optimizer's own state
  /// (converting dtypes), restores per-group lr / initial_lr / weight_decay and the options.
  /// Validates everything first and throws Error{InvalidArgument} naming the first mismatch
  /// (group or parameter count, a shape, an unknown entry, a bad option), leaving this
  /// optimizer unchanged when it throws.
  void load_state_dict(const StateDict& state);
  /// Throws exactly what load_state_dict(state) would throw, and changes nothing: lets several
  /// ranks check a state first and then all load it (io::load_checkpoint), so that no rank
  /// needs a copy of its old state to roll back to.
  void check_state_dict(const StateDict& state) const;

  // ---- hooks (DistributedDataParallel's sharded optimizers use them; Note [sharded optimizer]) ----

  /// A hook run by step() or zero_grad(); `set_to_none` is zero_grad's argument (false for step hooks).
  using Hook = std::function<void(Optimizer& optimizer, bool set_to_none)>;
  /// Runs `hook` at the start of every step(), before any parameter is checked or changed; a hook
  /// that throws stops the step with nothing changed. Returns a handle for remove_hook().
  uint64_t register_step_pre_hook(Hook hook);
  /// Runs `hook` after every step() that completed (not after one that threw).
  uint64_t register_step_post_hook(Hook hook);
  /// Runs `hook` after every zero_grad().
  uint64_t register_zero_grad_post_hook(Hook hook);
  /// Removes a hook registered above; returns false if the handle is unknown.
  bool remove_hook(uint64_t handle);

  /// How the parameters map to whole tensors when they are pieces of tensors spread over ranks
  /// (DistributedDataParallel with DDPOptions::shard; Note [sharded optimizer]).
  struct WholeTensors {
    /// Per parameter (global index, group order): the index of the whole tensor it is a piece of.
    std::vector<int64_t> index = {};
    /// Number of whole tensors (the same on every rank).
    int64_t count = 0;
    /// Sums a 1-D f64 CPU tensor over the ranks in place (a collective: every rank calls it once
    /// per step, in the same order).
    std::function<void(Tensor& sums)> all_reduce_sum = {};
  };
  /// Declares the parameters to be pieces of whole tensors. Rules that need a norm of each whole
  /// tensor (LAMB's trust ratio) then sum the pieces' partial norms over the ranks; element-wise
  /// rules (SGD, Adam, AdamW) ignore it. Error{InvalidArgument} when `index` does not have one
  /// entry per parameter or an entry is outside [0, count).
  void set_whole_tensors(WholeTensors whole);
  /// The declaration above, or nullptr for an optimizer over whole tensors.
  const WholeTensors* whole_tensors() const { return whole_ ? &*whole_ : nullptr; }

 protected:
  /// A group with its overrides resolved.
  struct Group {
    std::vector<Tensor> params;  ///< the group's parameters
    double lr = 0.0;             ///< current learning rate (schedules change it)
    double initial_lr = 0.0;     ///< the learning rate at construction
    double weight_decay = 0.0;   ///< resolved weight decay
    int64_t first_index = 0;     ///< global index of params[0] among all groups' parameters
  };

  /// State of one parameter: its step count and named buffers of the parameter's shape.
  struct ParamState {
    int64_t step = 0;                                      ///< updates applied to this parameter
    std::vector<std::pair<std::string, Tensor>> buffers;  ///< e.g. ("exp_avg", m), ("exp_avg_sq", v)
    /// The buffer `name`, or nullptr.
    Tensor* find(const std::string& name);
  };

  /// `params` as the single group of an optimizer.
  static std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
    return {ParamGroup{.params = std::move(params)}};
  }

  /// Validates the groups (and the defaults `default_lr`, `default_weight_decay`).
  Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay);

  /// One parameter of an update: `param` contiguous (written in place; the parameter
  /// itself or a copy that step() writes back), `grad` contiguous (the parameter's dtype, or f32
  /// for a 16-bit one), `master` its f32 master weights when 16-bit (else undefined), `state` its
  /// state with the step already incremented.
  struct DeviceItem {
    Tensor param;                 ///< written in place
    Tensor grad;                  ///< read
    Tensor master;                ///< f32 master weights of a 16-bit parameter, else undefined
    ParamState* state = nullptr;  ///< the parameter's state (not owned)
    int64_t index = 0;            ///< the parameter's global index
  };
  /// Updates every item (all on one device, in parameter order) through the optimizer's
  /// multi-tensor kernel (src/kernels/optim_update.h), which runs on the items' device: on CUDA
  /// in as few launches as the fused kernels allow, on the device's current stream, without a
  /// host sync.
  virtual void update(const Group& group, std::vector<DeviceItem>& items) = 0;
  /// The items of one group on one device, as update() receives them.
  struct GroupItems {
    const Group* group = nullptr;    ///< the group (not owned)
    std::vector<DeviceItem> items;   ///< its items on one device
  };
  /// Updates every group's items of one step (in group order, then device order). The default
  /// calls update() for each entry; a rule that needs something of the whole step at once (LAMB
  /// over pieces of whole tensors: one reduction of the norms per step) overrides it.
  virtual void update_all(std::vector<GroupItems>& all);
  /// Every buffer name this optimizer may keep per parameter (for load_state_dict validation).
  virtual std::vector<std::string> buffer_names() const = 0;
  /// The optimizer-wide options as scalars.
  virtual std::vector<OptionField> option_fields() const = 0;
  /// Replaces the options with `fields` (same names as option_fields()). Validates first and
  /// throws without changing anything when a value is invalid.
  virtual void set_option_fields(const std::vector<OptionField>& fields) = 0;
  /// Throws what set_option_fields(fields) would throw, changing nothing. The default accepts
  /// any values (an optimizer without it is then checked only when its options are set).
  virtual void check_option_fields(const std::vector<OptionField>& fields) const { (void)fields; }
  /// Why step() cannot run inside a CUDA graph capture now, or nullptr when it can (Note [cuda
  /// graph capture]); step() throws Error{Unsupported} with it inside a capture. Only an optimizer
  /// that reads its step-dependent scalars from the device can be captured. The default: its
  /// kernels take lr and the bias corrections as host values.
  virtual const char* capture_refusal() const;
  /// Called by set_lr() (and so by the schedulers) after the lr of `group` changed: for
  /// optimizers that keep a copy of lr elsewhere (on the device). When it throws, set_lr restores
  /// the group's previous lr and rethrows. Default: nothing.
  virtual void lr_changed(const Group& group) { (void)group; }
  /// Called at the end of load_state_dict(), after the step counts and buffers were replaced.
  /// Default: nothing.
  virtual void state_loaded() {}
  /// Replaces entries of `counts` (the host's step counts, by parameter index) by those kept on
  /// the device, which replays of a captured step advance without the host knowing (Note
  /// [capturable adam]).
  /// Default: nothing (the host's counts are the truth).
  virtual void device_step_counts(std::vector<int64_t>& counts) const { (void)counts; }
  /// The host's step count of parameter `param_index` (what step() has counted on the host).
  int64_t host_step_count(int64_t param_index) const { return state_[static_cast<size_t>(param_index)].step; }

  /// The state buffer `name` of `param` (a handle to the stored tensor), created as zeros on
  /// first use on param's device (f64 for f64 params, else f32). Returns `created` = true when
  /// it was just created.
  static Tensor state_buffer(ParamState& state, const std::string& name, const Tensor& param,
                             bool* created = nullptr);
  /// For each item, the buffer `name` of its master (16-bit) or parameter, as state_buffer.
  static std::vector<Tensor> state_buffers(std::vector<DeviceItem>& items, const std::string& name,
                                           std::vector<uint8_t>* created = nullptr);
  /// The dtype of state buffers for a parameter of dtype `param_dtype`.
  static DType state_dtype(DType param_dtype) { return param_dtype == DType::f64 ? DType::f64 : DType::f32; }

 private:
  std::string name_;
  std::vector<Group> groups_;
  std::vector<ParamState> state_;  // indexed by global parameter index
  enum class HookKind { step_pre, step_post, zero_grad_post };
  struct HookEntry {
    uint64_t handle = 0;
    HookKind kind = HookKind::step_pre;
    Hook hook;
  };
  std::vector<HookEntry> hooks_;
  uint64_t next_hook_ = 1;
  std::optional<WholeTensors> whole_;
  uint64_t add_hook(HookKind kind, Hook hook);
  void run_hooks(HookKind kind, bool set_to_none);
  struct LoadPlan;  // a checked state_dict, ready to apply (optimizer.cpp)
  LoadPlan plan_load(const StateDict& state, bool copy_buffers) const;
  std::vector<int64_t> step_counts_() const;  // the host's, raised by device_step_counts()
};

}  // namespace kirzl::optim
