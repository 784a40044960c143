#include "kirzl/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/optim_update.h"
#include "kirzl/core/cuda_graph.hpp"
#include "optim/option_checks.h"

namespace kirzl::optim {

namespace {

/// The options Adam and AdamW share, plus how weight decay enters.
struct AdamConfig {
  double beta1, beta2, eps;
  bool amsgrad, maximize;
  bool decoupled;  // AdamW
};

template <typename Options>
void validate(const char* who, const Options& o) {
  detail::check_unit_interval(who, "betas", o.betas.first);
  detail::check_unit_interval(who, "betas", o.betas.second);
  detail::check_positive(who, "eps", o.eps);
  detail::check_finite(who, "eps", o.eps);
}

template <typename Options>
AdamConfig config_of(const Options& o, bool decoupled) {
  return {o.betas.first, o.betas.second, o.eps, o.amsgrad, o.maximize, decoupled};
}

template <typename Options>
std::vector<Optimizer::OptionField> fields_of(const Options& o) {
  return {{"beta1", o.betas.first},
          {"beta2", o.betas.second},
          {"eps", o.eps},
          {"amsgrad", o.amsgrad ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

template <typename Options>
Options with_fields(Options o, const std::vector<Optimizer::OptionField>& fields) {
  for (const auto& f : fields) {
    if (f.name == "beta1") o.betas.first = f.value;
    else if (f.name == "beta2") o.betas.second = f.value;
    else if (f.name == "eps") o.eps = f.value;
    else if (f.name == "amsgrad") o.amsgrad = f.value != 0.0;
    else if (f.name == "maximize") o.maximize = f.value != 0.0;
  }
  return o;
}

/// The step of Adam/AdamW over `items` (all on one device).
/// (Items = std::vector<Optimizer::DeviceItem>, a protected type.)
constexpr const char* kFirstStepNotCaptured =
    "the first step of a capturable optimizer must run before a CUDA graph capture (it creates the step counters on "
    "the device); run warm-up steps eagerly first";

/// With `device` (capturable, Note [capturable adam]) the kernel reads lr and the step counts
/// there and advances the counts itself.
template <typename Items>
void adam_step(const AdamConfig& c, double lr, double weight_decay, const Items& items,
               std::vector<Tensor> exp_avg, std::vector<Tensor> exp_avg_sq, std::vector<Tensor> max_exp_avg_sq,
               const Tensor& device_steps = Tensor(), const Tensor& device_lr = Tensor(), int64_t first_index = 0) {
  kernels::OptimLists lists;
  std::vector<int64_t> steps, slots;
  for (const auto& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
    steps.push_back(item.state->step);
    if (device_steps.defined()) slots.push_back(item.index - first_index);
  }
  lists.state[0] = std::move(exp_avg);
  lists.state[1] = std::move(exp_avg_sq);
  lists.state[2] = std::move(max_exp_avg_sq);
  kernels::multi_tensor_adam(lists, steps,
                             {.lr = lr,
                              .weight_decay = weight_decay,
                              .beta1 = c.beta1,
                              .beta2 = c.beta2,
                              .eps = c.eps,
                              .decoupled = c.decoupled,
                              .amsgrad = c.amsgrad,
                              .maximize = c.maximize,
                              .device_steps = device_steps,
                              .device_lr = device_lr,
                              .slots = std::move(slots)});
}

}  // namespace

namespace detail {

template <typename OptionsT, bool kDecoupled>
AdamFamily<OptionsT, kDecoupled>::AdamFamily(std::vector<Tensor> params, OptionsT options)
    : AdamFamily(one_group(std::move(params)), options) {}

template <typename OptionsT, bool kDecoupled>
AdamFamily<OptionsT, kDecoupled>::AdamFamily(std::vector<ParamGroup> groups, OptionsT options)
    : Optimizer(kDecoupled ? "AdamW" : "Adam", std::move(groups), options.lr, options.weight_decay),
      options_(options) {
  validate(name().c_str(), options_);
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::update(const Group& group, std::vector<DeviceItem>& items) {
  std::vector<Tensor> vmax = options_.amsgrad ? state_buffers(items, "max_exp_avg_sq") : std::vector<Tensor>{};
  if (!options_.capturable) {
    adam_step(config_of(options_, kDecoupled), group.lr, group.weight_decay, items, state_buffers(items, "exp_avg"),
              state_buffers(items, "exp_avg_sq"), std::move(vmax));
    return;
  }
  DeviceScalars& d = device_scalars(group, items);
  adam_step(config_of(options_, kDecoupled), group.lr, group.weight_decay, items, state_buffers(items, "exp_avg"),
            state_buffers(items, "exp_avg_sq"), std::move(vmax), d.steps, d.lr, group.first_index);
}

// Note [capturable adam]
// A captured step must not bake in what changes from step to step. Adam's kernel takes lr / (1 -
// β1^t), 1 / sqrt(1 - β2^t) and AdamW's decay 1 - lr λ as host values computed from each
// parameter's host step count t; a graph would replay the first step's values forever. With
// capturable = true, each group keeps on each device an f64 vector of its parameters' step counts
// and an f64 lr; the update's first launch adds 1 to the counts of the parameters it updates, and
// the Adam kernel computes the three scalars from the count and lr it reads (in f64, as the host
// does, then rounded to the math type). Replays therefore advance t. lr lives on the device too,
// written (on the caller's current stream) when it is created, by set_lr() and the schedulers
// through lr_changed(), so an lr set between replays reaches the next replay (inside a capture
// lr_changed() refuses: the graph would rewrite the captured lr at every replay). The counters are
// created from the host counts at the first step, which must not be captured (it would copy host
// values inside the capture; warm-up steps come first anyway). Nor may a parameter's own first
// update, e.g. one that had no gradient in the warm-up steps (Optimizer::step refuses it): it
// creates the parameter's moments and master, and a replay would recreate them every time.
// state_dict() and step_count() read them (device_step_counts), since replays do not reach the
// host's counts. load_state_dict()
// writes the loaded counts and lr into them in place, so a graph captured before the load replays
// on from the loaded state. On the CPU the same bookkeeping runs (the CPU kernel reads the counters from
// host memory), so the CPU tests cover it.
template <typename OptionsT, bool kDecoupled>
typename AdamFamily<OptionsT, kDecoupled>::DeviceScalars& AdamFamily<OptionsT, kDecoupled>::device_scalars(
    const Group& group, const std::vector<DeviceItem>& items) {
  const Device device = items.front().param.device();
  auto key = std::make_pair(group.first_index, device.is_cpu() ? -1 : device.index());
  auto it = device_scalars_.find(key);
  if (it != device_scalars_.end()) return it->second;
  KIRZL_CHECK_CODE(!device.is_cuda() || !cuda::is_capturing(device.index()), ErrorCode::Unsupported, name(),
                   ".step: cannot run inside CUDA graph capture: ", kFirstStepNotCaptured);
  // The counts before this step: the base class has already counted it on the host.
  std::vector<double> counts(group.params.size(), 0.0);
  for (const DeviceItem& item : items) counts[static_cast<size_t>(item.index - group.first_index)] = item.state->step - 1;
  DeviceScalars d;
  d.steps = from_vector(counts, {static_cast<int64_t>(counts.size())}, {.dtype = DType::f64}).to(device);
  d.lr = full({1}, group.lr, {.dtype = DType::f64, .device = device});
  return device_scalars_.emplace(key, std::move(d)).first->second;
}

// The loaded counts and lr go into the existing device tensors, in place: a captured graph keeps
// reading those addresses (Note [capturable adam]).
template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::state_loaded() {
  int64_t first = 0;
  for (int64_t g = 0; g < num_groups(); ++g) {
    const auto n = static_cast<int64_t>(params(g).size());
    for (auto& [key, d] : device_scalars_) {
      if (key.first != first) continue;
      std::vector<double> counts(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) counts[static_cast<size_t>(j)] = static_cast<double>(host_step_count(first + j));
      d.steps.copy_(from_vector(counts, {n}, {.dtype = DType::f64}));
      d.lr.fill_(lr(g));
    }
    first += n;
  }
}

// Replays advance the device counters only, so for a parameter on a counter's device that counter
// is the truth (the host's count is behind after replays, and one ahead after the capture, whose
// step() counted on the host but whose counter advance did not run). Parameters of the group on
// other devices keep the count of their own device's counter.
template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::device_step_counts(std::vector<int64_t>& counts) const {
  for (const auto& [key, d] : device_scalars_) {
    int64_t g = 0, first = 0;
    while (g < num_groups() && first != key.first) first += static_cast<int64_t>(params(g++).size());
    if (g >= num_groups()) continue;
    const std::vector<Tensor>& ps = params(g);
    const Tensor host = d.steps.to(Device::cpu()).contiguous();
    const double* v = host.data<double>();
    for (size_t j = 0; j < ps.size(); ++j) {
      const Device pd = ps[j].device();
      if ((pd.is_cpu() ? -1 : pd.index()) != key.second) continue;
      counts[static_cast<size_t>(key.first) + j] = static_cast<int64_t>(std::llround(v[j]));
    }
  }
}

template <typename OptionsT, bool kDecoupled>
const char* AdamFamily<OptionsT, kDecoupled>::capture_refusal() const {
  if (!options_.capturable) return Optimizer::capture_refusal();
  if (device_scalars_.empty()) return kFirstStepNotCaptured;
  return nullptr;
}

// Inside a capture the write of the device lr would be recorded into the graph: every replay would
// set lr back to this value, overwriting an lr set between replays (e.g. a scheduler stepped
// inside the captured step). Refused before any counter is written; set_lr then keeps the old lr.
template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::lr_changed(const Group& group) {
  for (const auto& [key, d] : device_scalars_)
    KIRZL_CHECK_CODE(key.first != group.first_index || key.second < 0 || !cuda::is_capturing(key.second),
                     ErrorCode::Unsupported, name(), ".set_lr: cannot run inside CUDA graph capture (the current "
                     "stream of cuda:", key.second, " is being captured): the graph would write this lr at every "
                     "replay, overwriting an lr set between replays; call set_lr() and the schedulers' step() "
                     "between replays");
  for (auto& [key, d] : device_scalars_)
    if (key.first == group.first_index) d.lr.fill_(group.lr);
}

template <typename OptionsT, bool kDecoupled>
std::vector<Optimizer::OptionField> AdamFamily<OptionsT, kDecoupled>::option_fields() const {
  return fields_of(options_);
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::set_option_fields(const std::vector<OptionField>& fields) {
  OptionsT o = with_fields(options_, fields);
  validate(name().c_str(), o);
  options_ = o;
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::check_option_fields(const std::vector<OptionField>& fields) const {
  validate(name().c_str(), with_fields(options_, fields));
}

template class AdamFamily<AdamOptions, false>;
template class AdamFamily<AdamWOptions, true>;

}  // namespace detail

}  // namespace kirzl::optim
