#include "kirzl/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/cuda_runtime.h"
#include "kirzl/autograd.hpp"
#include "kirzl/core/cuda_graph.hpp"
#include "optim/option_checks.h"

namespace kirzl::optim {

namespace {

Tensor scalar_f64(double v) { return scalar_tensor(v, {.dtype = DType::f64}); }

/// Splits "<prefix>.<index>.<field>" into index and field; false when `key` has another form.
bool split_indexed(const std::string& key, const std::string& prefix, int64_t& index, std::string& field) {
  if (key.size() <= prefix.size() + 1 || key.compare(0, prefix.size(), prefix) != 0 || key[prefix.size()] != '.')
    return false;
  size_t start = prefix.size() + 1;
  size_t dot = key.find('.', start);
  if (dot == std::string::npos || dot == start || dot + 1 >= key.size()) return false;
  index = 0;
  for (size_t i = start; i < dot; ++i) {
    if (key[i] < '0' || key[i] > '9' || index > (int64_t{1} << 40)) return false;
    index = index * 10 + (key[i] - '0');
  }
  field = key.substr(dot + 1);
  return true;
}

/// The value of a one-element tensor entry, checked.
double scalar_entry(const std::string& who, const std::string& key, const Tensor& t) {
  KIRZL_CHECK(t.defined() && t.numel() == 1, who, ".load_state_dict: entry '", key, "' must hold one number, got ",
              t.describe());
  return t.item();
}

}  // namespace

Tensor* Optimizer::ParamState::find(const std::string& name) {
  for (auto& [n, t] : buffers)
    if (n == name) return &t;
  return nullptr;
}

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay)
    : name_(std::move(name)) {
  detail::check_non_negative(name_, "lr", default_lr);
  detail::check_finite(name_, "lr", default_lr);
  detail::check_non_negative(name_, "weight_decay", default_weight_decay);
  detail::check_finite(name_, "weight_decay", default_weight_decay);
  int64_t index = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    Group group;
    group.lr = groups[g].lr.value_or(default_lr);
    group.weight_decay = groups[g].weight_decay.value_or(default_weight_decay);
    KIRZL_CHECK(group.lr >= 0.0 && std::isfinite(group.lr), name_, ": option 'lr' of param group ", g,
                " must be finite and >= 0, got ", group.lr);
    KIRZL_CHECK(group.weight_decay >= 0.0 && std::isfinite(group.weight_decay), name_,
                ": option 'weight_decay' of param group ", g, " must be finite and >= 0, got ", group.weight_decay);
    group.initial_lr = group.lr;
    group.first_index = index;
    for (const Tensor& p : groups[g].params) {
      KIRZL_CHECK(p.defined(), name_, ": parameter ", index, " (group ", g, ") is an undefined tensor");
      KIRZL_CHECK(is_floating(p.dtype()), name_, ": parameter ", index, " (group ", g, ") must be floating, got ",
                  p.describe());
      for (const Group& other : groups_)
        for (const Tensor& q : other.params)
          KIRZL_CHECK(!q.is_same(p), name_, ": parameter ", index, " appears more than once in the param groups");
      for (const Tensor& q : group.params)
        KIRZL_CHECK(!q.is_same(p), name_, ": parameter ", index, " appears more than once in the param groups");
      group.params.push_back(p);
      ++index;
    }
    groups_.push_back(std::move(group));
  }
  KIRZL_CHECK(index > 0, name_, ": got an empty parameter list");
  state_.resize(static_cast<size_t>(index));
}

Optimizer::~Optimizer() = default;

const std::vector<Tensor>& Optimizer::params(int64_t group) const {
  KIRZL_CHECK(group >= 0 && group < num_groups(), name_, ": param group ", group, " out of range [0, ", num_groups(),
              ")");
  return groups_[group].params;
}

double Optimizer::lr(int64_t group) const {
  KIRZL_CHECK(group >= 0 && group < num_groups(), name_, ".lr: param group ", group, " out of range [0, ",
              num_groups(), ")");
  return groups_[group].lr;
}

const char* Optimizer::capture_refusal() const {
  return "its kernels take lr and the step-dependent bias corrections as host values, which the graph would replay "
         "unchanged (AdamW and Adam with capturable = true can be captured)";
}

void Optimizer::set_lr(double lr, int64_t group) {
  KIRZL_CHECK(lr >= 0.0 && std::isfinite(lr), name_, ".set_lr: option 'lr' must be finite and >= 0, got ", lr);
  KIRZL_CHECK(group >= -1 && group < num_groups(), name_, ".set_lr: param group ", group, " out of range [0, ",
              num_groups(), ") (or -1 for all)");
  for (int64_t g = 0; g < num_groups(); ++g)
    if (group == -1 || g == group) {
      const double previous = groups_[g].lr;
      groups_[g].lr = lr;
      try {
        lr_changed(groups_[g]);
      } catch (...) {  // e.g. refused inside a CUDA graph capture: the lr stays what the device has
        groups_[g].lr = previous;
        throw;
      }
    }
}

double Optimizer::initial_lr(int64_t group) const {
  KIRZL_CHECK(group >= 0 && group < num_groups(), name_, ".initial_lr: param group ", group, " out of range [0, ",
              num_groups(), ")");
  return groups_[group].initial_lr;
}

double Optimizer::weight_decay(int64_t group) const {
  KIRZL_CHECK(group >= 0 && group < num_groups(), name_, ".weight_decay: param group ", group, " out of range [0, ",
              num_groups(), ")");
  return groups_[group].weight_decay;
}

int64_t Optimizer::step_count(int64_t param_index) const {
  KIRZL_CHECK(param_index >= 0 && param_index < num_params(), name_, ".step_count: parameter ", param_index,
              " out of range [0, ", num_params(), ")");
  std::vector<int64_t> counts = step_counts_();
  return counts[static_cast<size_t>(param_index)];
}

std::vector<int64_t> Optimizer::step_counts_() const {
  std::vector<int64_t> counts(state_.size());
  for (size_t i = 0; i < state_.size(); ++i) counts[i] = state_[i].step;
  device_step_counts(counts);
  return counts;
}

Tensor Optimizer::state_buffer(ParamState& state, const std::string& name, const Tensor& param, bool* created) {
  if (created) *created = false;
  if (Tensor* t = state.find(name)) return *t;
  state.buffers.emplace_back(name, zeros(param.shape(), {.dtype = state_dtype(param.dtype()), .device = param.device()}));
  if (created) *created = true;
  return state.buffers.back().second;
}

std::vector<Tensor> Optimizer::state_buffers(std::vector<DeviceItem>& items, const std::string& name,
                                             std::vector<uint8_t>* created) {
  std::vector<Tensor> out;
  if (created) created->clear();
  for (DeviceItem& item : items) {
    bool c = false;
    out.push_back(state_buffer(*item.state, name, item.master.defined() ? item.master : item.param, &c));
    if (created) created->push_back(c ? 1 : 0);
  }
  return out;
}

namespace {

bool is_16bit(DType t) { return t == DType::bf16 || t == DType::f16; }

/// The f32 master weights of a 16-bit parameter (Note [master weights]), created from the
/// parameter's current (contiguous) value on first use.
Tensor master_of(std::vector<std::pair<std::string, Tensor>>& buffers, const Tensor& param) {
  for (auto& [n, t] : buffers)
    if (n == "master") return t;
  Tensor m = param.to(DType::f32).contiguous();
  buffers.emplace_back("master", m);
  return m;
}

}  // namespace

uint64_t Optimizer::add_hook(HookKind kind, Hook hook) {
  KIRZL_CHECK(static_cast<bool>(hook), name_, ": register_*_hook: the hook is empty");
  hooks_.push_back({next_hook_, kind, std::move(hook)});
  return next_hook_++;
}
uint64_t Optimizer::register_step_pre_hook(Hook hook) { return add_hook(HookKind::step_pre, std::move(hook)); }
uint64_t Optimizer::register_step_post_hook(Hook hook) { return add_hook(HookKind::step_post, std::move(hook)); }
uint64_t Optimizer::register_zero_grad_post_hook(Hook hook) { return add_hook(HookKind::zero_grad_post, std::move(hook)); }

bool Optimizer::remove_hook(uint64_t handle) {
  for (auto it = hooks_.begin(); it != hooks_.end(); ++it)
    if (it->handle == handle) {
      hooks_.erase(it);
      return true;
    }
  return false;
}

void Optimizer::run_hooks(HookKind kind, bool set_to_none) {
  // A copy: a hook may remove itself.
  std::vector<HookEntry> now = hooks_;
  for (HookEntry& h : now)
    if (h.kind == kind) h.hook(*this, set_to_none);
}

void Optimizer::set_whole_tensors(WholeTensors whole) {
  KIRZL_CHECK(static_cast<int64_t>(whole.index.size()) == num_params(), name_, ".set_whole_tensors: ",
              whole.index.size(), " entries for ", num_params(), " parameters");
  for (size_t i = 0; i < whole.index.size(); ++i)
    KIRZL_CHECK(whole.index[i] >= 0 && whole.index[i] < whole.count, name_, ".set_whole_tensors: parameter ", i,
                " maps to whole tensor ", whole.index[i], ", outside [0, ", whole.count, ")");
  KIRZL_CHECK(static_cast<bool>(whole.all_reduce_sum), name_, ".set_whole_tensors: all_reduce_sum is empty");
  whole_ = std::move(whole);
}

void Optimizer::update_all(std::vector<GroupItems>& all) {
  for (GroupItems& g : all) update(*g.group, g.items);
}

void Optimizer::step() {
  run_hooks(HookKind::step_pre, false);
  NoGradGuard no_grad;
  // Check every parameter before touching any, so a bad one leaves the model consistent.
  std::vector<int> cuda_devices;
  for (const Group& group : groups_) {
    for (size_t k = 0; k < group.params.size(); ++k) {
      const Tensor& p = group.params[k];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      int64_t index = group.first_index + static_cast<int64_t>(k);
      KIRZL_CHECK(grad.device() == p.device(), name_, ": gradient ", grad.describe(), " of parameter ", index,
                  " is not on the parameter's device (", p.describe(), ")");
      KIRZL_CHECK(grad.shape() == p.shape(), name_, ": gradient ", grad.describe(), " of parameter ", index,
                  " does not match the parameter ", p.describe());
      KIRZL_CHECK(is_floating(grad.dtype()), name_, ": gradient ", grad.describe(), " of parameter ", index,
                  " must be floating");
      if (p.device().is_cuda() && std::find(cuda_devices.begin(), cuda_devices.end(), p.device().index()) == cuda_devices.end())
        cuda_devices.push_back(p.device().index());
    }
  }
  // Note [cuda graph capture]: the kernels take lr and the bias corrections of the host's step
  // counts as arguments, which a graph would bake in.
  if (const char* why = capture_refusal()) {
    for (int d : cuda_devices) cuda_rt::check_not_capturing(d, (name_ + ".step").c_str(), why);
  } else {
    // A capturable optimizer (Note [capturable adam]): a parameter's first update creates its
    // state (zeroed moments, the f32 master of a 16-bit parameter). Inside a capture those
    // kernels would be recorded with the update, and every replay would reset the state (the
    // master to the 16-bit value) before updating. Checked before anything is counted.
    for (int d : cuda_devices) {
      if (!cuda::is_capturing(d)) continue;
      for (const Group& group : groups_)
        for (size_t k = 0; k < group.params.size(); ++k) {
          const Tensor& p = group.params[k];
          const int64_t index = group.first_index + static_cast<int64_t>(k);
          if (!p.grad().defined() || !p.device().is_cuda() || p.device().index() != d || state_[index].step != 0)
            continue;
          const std::string why = "parameter " + std::to_string(index) +
                                  " gets its first update here, which creates its state inside the graph (every "
                                  "replay would reset it); run warm-up steps in which every parameter has a "
                                  "gradient before the capture";
          cuda_rt::check_not_capturing(d, (name_ + ".step").c_str(), why.c_str());
        }
    }
  }
  std::vector<GroupItems> all;
  std::vector<std::pair<Tensor, Tensor>> write_back;  // (parameter, its contiguous copy)
  for (const Group& group : groups_) {
    // By device (type, index), so each device's kernel gets its parameters in one list.
    std::map<std::pair<int, int>, std::vector<DeviceItem>> device_items;
    for (size_t k = 0; k < group.params.size(); ++k) {
      const Tensor& p = group.params[k];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      int64_t index = group.first_index + static_cast<int64_t>(k);
      const bool half = is_16bit(p.dtype());
      // The update reads the gradient in the parameter's dtype, or in f32 for a 16-bit
      // parameter (which is updated through its f32 master).
      const DType grad_dtype = half && grad.dtype() == DType::f32 ? DType::f32 : p.dtype();
      if (grad.dtype() != grad_dtype) grad = grad.to(grad_dtype);
      if (!grad.is_contiguous()) grad = grad.contiguous();
      // A non-contiguous parameter is updated in a contiguous copy and written back with copy_,
      // so the caller's handle keeps its memory.
      Tensor target = p.is_contiguous() ? p : p.contiguous();
      ParamState& st = state_[index];
      ++st.step;
      Tensor master = half ? master_of(st.buffers, target) : Tensor();
      const Device d = p.device();
      device_items[{static_cast<int>(d.type()), d.index()}].push_back(DeviceItem{target, grad, master, &st, index});
      if (!target.is_same(p)) write_back.emplace_back(p, target);
    }
    for (auto& [device, items] : device_items) all.push_back({&group, std::move(items)});
  }
  update_all(all);
  for (auto& [p, t] : write_back) {
    Tensor dst = p;
    dst.copy_(t);
  }
  run_hooks(HookKind::step_post, false);
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (Group& group : groups_)
    for (Tensor& p : group.params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (set_to_none) p.set_grad(Tensor());
      else g.zero_();
    }
  run_hooks(HookKind::zero_grad_post, set_to_none);
}

StateDict Optimizer::state_dict() const {
  NoGradGuard no_grad;
  StateDict sd;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Group& group = groups_[g];
    std::string prefix = "param_groups." + std::to_string(g) + ".";
    sd.insert(prefix + "lr", scalar_f64(group.lr));
    sd.insert(prefix + "initial_lr", scalar_f64(group.initial_lr));
    sd.insert(prefix + "weight_decay", scalar_f64(group.weight_decay));
    Tensor indices = empty({static_cast<int64_t>(group.params.size())}, {.dtype = DType::i64});
    auto* idx = indices.data<int64_t>();
    for (size_t k = 0; k < group.params.size(); ++k) idx[k] = group.first_index + static_cast<int64_t>(k);
    sd.insert(prefix + "params", indices);
  }
  for (const OptionField& f : option_fields()) sd.insert("options." + f.name, scalar_f64(f.value));
  const std::vector<int64_t> counts = step_counts_();
  for (size_t i = 0; i < state_.size(); ++i) {
    const ParamState& st = state_[i];
    if (st.step == 0 && st.buffers.empty()) continue;
    std::string prefix = "state." + std::to_string(i) + ".";
    sd.insert(prefix + "step", scalar_f64(static_cast<double>(counts[i])));
    for (const auto& [n, t] : st.buffers) sd.insert(prefix + n, t.clone());
  }
  return sd;
}

// A state_dict, checked against this optimizer: the option values, each group's fields and the
// per-parameter state (its buffers copied into fresh tensors of this optimizer's state dtype,
// when planned for loading).
struct Optimizer::LoadPlan {
  struct GroupIn {
    std::optional<double> lr, initial_lr, weight_decay;
    const Tensor* params = nullptr;
  };
  std::vector<OptionField> options;
  std::map<int64_t, GroupIn> groups;
  std::map<int64_t, ParamState> states;
};

Optimizer::LoadPlan Optimizer::plan_load(const StateDict& sd, bool copy_buffers) const {
  const std::string who = name_ + ".load_state_dict";
  const std::vector<std::string> allowed = buffer_names();
  LoadPlan plan;
  plan.options = option_fields();
  std::vector<bool> option_seen(plan.options.size(), false);
  std::map<int64_t, bool> step_seen;

  for (const auto& [key, t] : sd) {
    int64_t index = 0;
    std::string field;
    if (key.rfind("options.", 0) == 0) {
      std::string opt = key.substr(8);
      bool known = false;
      for (size_t o = 0; o < plan.options.size(); ++o)
        if (plan.options[o].name == opt) {
          plan.options[o].value = scalar_entry(name_, key, t);
          option_seen[o] = known = true;
        }
      KIRZL_CHECK(known, who, ": unknown option entry '", key, "'");
    } else if (split_indexed(key, "param_groups", index, field)) {
      KIRZL_CHECK(index < num_groups(), who, ": entry '", key, "' names param group ", index, " but this optimizer has ",
                  num_groups(), " group(s)");
      LoadPlan::GroupIn& gi = plan.groups[index];
      if (field == "lr") gi.lr = scalar_entry(name_, key, t);
      else if (field == "initial_lr") gi.initial_lr = scalar_entry(name_, key, t);
      else if (field == "weight_decay") gi.weight_decay = scalar_entry(name_, key, t);
      else if (field == "params") gi.params = &t;
      else KIRZL_FAIL(ErrorCode::InvalidArgument, who, ": unknown entry '", key, "'");
    } else if (split_indexed(key, "state", index, field)) {
      KIRZL_CHECK(index < num_params(), who, ": entry '", key, "' names parameter ", index,
                  " but this optimizer has ", num_params(), " parameter(s)");
      ParamState& st = plan.states[index];
      const Tensor& param = [&]() -> const Tensor& {
        for (const Group& g : groups_)
          if (index < g.first_index + static_cast<int64_t>(g.params.size())) return g.params[index - g.first_index];
        KIRZL_FAIL(ErrorCode::Internal, who, ": parameter index ", index, " not in any group");
      }();
      if (field == "step") {
        double s = scalar_entry(name_, key, t);
        KIRZL_CHECK(s >= 0 && s == std::floor(s) && s < 9.0e15, who, ": entry '", key,
                    "' must be a non-negative integer, got ", s);
        st.step = static_cast<int64_t>(s);
        step_seen[index] = true;
      } else {
        bool known = field == "master" && is_16bit(param.dtype());
        for (const auto& a : allowed) known = known || a == field;
        KIRZL_CHECK(known, who, ": unknown entry '", key, "' (", name_, " keeps no state named '", field, "')");
        KIRZL_CHECK(t.defined() && t.shape() == param.shape() && is_floating(t.dtype()), who, ": entry '", key, "' is ",
                    t.describe(), " but parameter ", index, " is ", param.describe(),
                    " (expected a floating tensor of the same shape)");
        if (copy_buffers) {
          Tensor copy = empty(param.shape(), {.dtype = state_dtype(param.dtype()), .device = param.device()});
          copy.copy_(t);
          st.buffers.emplace_back(field, copy);
        }
      }
    } else {
      KIRZL_FAIL(ErrorCode::InvalidArgument, who, ": unknown entry '", key, "'");
    }
  }

  // Completeness: every group with every field, the same parameter indices, every option, steps.
  for (int64_t g = 0; g < num_groups(); ++g) {
    std::string prefix = "param_groups." + std::to_string(g) + ".";
    auto it = plan.groups.find(g);
    KIRZL_CHECK(it != plan.groups.end(), who, ": the state has no entries for param group ", g,
                " (this optimizer has ", num_groups(), " group(s))");
    const LoadPlan::GroupIn& gi = it->second;
    KIRZL_CHECK(gi.lr.has_value(), who, ": missing entry '", prefix, "lr'");
    KIRZL_CHECK(gi.initial_lr.has_value(), who, ": missing entry '", prefix, "initial_lr'");
    KIRZL_CHECK(gi.weight_decay.has_value(), who, ": missing entry '", prefix, "weight_decay'");
    KIRZL_CHECK(gi.params != nullptr, who, ": missing entry '", prefix, "params'");
    const Group& group = groups_[g];
    int64_t n = static_cast<int64_t>(group.params.size());
    KIRZL_CHECK(gi.params->dim() == 1 && gi.params->numel() == n, who, ": param group ", g, " holds ", n,
                " parameter(s) but entry '", prefix, "params' is ", gi.params->describe());
    std::vector<int64_t> idx = gi.params->to_vector<int64_t>();
    for (int64_t k = 0; k < n; ++k)
      KIRZL_CHECK(idx[k] == group.first_index + k, who, ": entry '", prefix, "params' lists parameter ", idx[k],
                  " at position ", k, ", expected ", group.first_index + k);
    KIRZL_CHECK(*gi.lr >= 0 && std::isfinite(*gi.lr), who, ": entry '", prefix, "lr' must be finite and >= 0, got ",
                *gi.lr);
    KIRZL_CHECK(*gi.initial_lr >= 0 && std::isfinite(*gi.initial_lr), who, ": entry '", prefix,
                "initial_lr' must be finite and >= 0, got ", *gi.initial_lr);
    KIRZL_CHECK(*gi.weight_decay >= 0 && std::isfinite(*gi.weight_decay), who, ": entry '", prefix,
                "weight_decay' must be finite and >= 0, got ", *gi.weight_decay);
  }
  for (size_t o = 0; o < plan.options.size(); ++o)
    KIRZL_CHECK(option_seen[o], who, ": missing entry 'options.", plan.options[o].name, "'");
  for (const auto& [index, st] : plan.states)
    KIRZL_CHECK(step_seen.count(index) != 0, who, ": missing entry 'state.", index, ".step'");
  check_option_fields(plan.options);
  return plan;
}

void Optimizer::check_state_dict(const StateDict& sd) const {
  NoGradGuard no_grad;
  plan_load(sd, /*copy_buffers=*/false);
}

void Optimizer::load_state_dict(const StateDict& sd) {
  NoGradGuard no_grad;
  LoadPlan plan = plan_load(sd, /*copy_buffers=*/true);
  // Everything checked; set_option_fields validates the values and is the last thing that may throw.
  set_option_fields(plan.options);
  for (int64_t g = 0; g < num_groups(); ++g) {
    const LoadPlan::GroupIn& gi = plan.groups[g];
    groups_[g].lr = *gi.lr;
    groups_[g].initial_lr = *gi.initial_lr;
    groups_[g].weight_decay = *gi.weight_decay;
  }
  for (auto& st : state_) st = ParamState{};
  for (auto& [index, st] : plan.states) state_[index] = std::move(st);
  state_loaded();
}

}  // namespace kirzl::optim
