#include "kirzl/nn/module.hpp"

#include <atomic>

#include "kirzl/autograd.hpp"

namespace kirzl::nn {

namespace {
std::atomic<uint64_t> next_forward_pre_hook{1};
}  // namespace

uint64_t Module::register_forward_pre_hook(ForwardPreHook hook) {
  KIRZL_CHECK(static_cast<bool>(hook), repr(), ".register_forward_pre_hook: the hook is empty");
  const uint64_t handle = next_forward_pre_hook.fetch_add(1);
  forward_pre_hooks_.emplace_back(handle, std::move(hook));
  return handle;
}

bool Module::remove_forward_pre_hook(uint64_t handle) {
  for (auto it = forward_pre_hooks_.begin(); it != forward_pre_hooks_.end(); ++it)
    if (it->first == handle) {
      forward_pre_hooks_.erase(it);
      return true;
    }
  return false;
}

void Module::run_forward_pre_hooks() {
  if (forward_pre_hooks_.empty()) return;
  // A copy: a hook may register or remove hooks (its own included) while the others run.
  const std::vector<std::pair<uint64_t, ForwardPreHook>> hooks = forward_pre_hooks_;
  for (const auto& [handle, hook] : hooks) hook(*this);
}

Tensor Module::forward(const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, repr(), " has no forward(Tensor); call its children directly");
}

std::string Module::repr() const { return "Module"; }

void Module::str_rec(std::string& out, int indent) const {
  out += repr();
  if (children_.empty()) return;
  out += "(\n";
  for (const auto& [name, child] : children_) {
    out += std::string(indent + 2, ' ') + "(" + name + "): ";
    child->str_rec(out, indent + 2);
    out += "\n";
  }
  out += std::string(indent, ' ') + ")";
}

std::string Module::str() const {
  std::string s;
  str_rec(s, 0);
  return s;
}

void Module::check_new_name(const std::string& name) const {
  KIRZL_CHECK(!name.empty() && name.find('.') == std::string::npos, repr(), ": invalid name '", name,
              "' (must be non-empty and contain no '.')");
  auto taken = [&](const auto& list) {
    for (const auto& e : list)
      if (e.first == name) return true;
    return false;
  };
  KIRZL_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), repr(), ": the name '", name,
              "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name);
  KIRZL_CHECK(t.defined(), repr(), ": parameter '", name, "' is undefined");
  KIRZL_CHECK(t.is_leaf(), repr(), ": parameter '", name, "' must be a leaf tensor (use detach())");
  if (requires_grad) t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  KIRZL_CHECK(t.defined(), repr(), ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  KIRZL_CHECK(m != nullptr, repr(), ": submodule '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params, bool recurse,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, true, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, recurse, out);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Module& Module::to(Device device) {
  NoGradGuard g;
  for (auto& [n, t] : named_parameters()) t.set_data(t.to(device));
  for (auto& [n, t] : named_buffers()) t.set_data(t.to(device));
  return *this;
}

Module& Module::to(DType dtype) {
  NoGradGuard g;
  for (auto& [n, t] : named_parameters())
    if (is_floating(t.dtype())) t.set_data(t.to(dtype));
  for (auto& [n, t] : named_buffers())
    if (is_floating(t.dtype())) t.set_data(t.to(dtype));
  return *this;
}

StateDict Module::state_dict() const {
  StateDict d;
  for (auto& [n, t] : named_parameters()) d.insert(n, t);
  for (auto& [n, t] : named_buffers()) d.insert(n, t);
  return d;
}

void Module::load_state_dict(const StateDict& dict, bool strict) {
  check_state_dict(dict, strict);
  NoGradGuard g;
  for (auto& [name, t] : state_dict())
    if (const Tensor* src = dict.find(name)) const_cast<Tensor&>(t).copy_(*src);
}

void Module::check_state_dict(const StateDict& dict, bool strict) const {
  StateDict own = state_dict();
  std::string missing, unexpected, mismatched;
  auto append = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& [name, t] : own) {
    const Tensor* src = dict.find(name);
    if (!src) {
      if (strict) append(missing, name);
      continue;
    }
    if (!(src->shape() == t.shape())) append(mismatched, name + " (checkpoint " + src->shape().str() + ", model " + t.shape().str() + ")");
  }
  if (strict)
    for (const auto& [name, t] : dict)
      if (!own.contains(name)) append(unexpected, name);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "load_state_dict: the state dict does not match " + repr() + ":";
    if (!missing.empty()) msg += " missing keys: " + missing + ";";
    if (!unexpected.empty()) msg += " unexpected keys: " + unexpected + ";";
    if (!mismatched.empty()) msg += " mis-shaped keys: " + mismatched + ";";
    KIRZL_FAIL(ErrorCode::InvalidArgument, msg);
  }
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      NoGradGuard ng;
      g.zero_();
    }
  }
}

}  // namespace kirzl::nn
