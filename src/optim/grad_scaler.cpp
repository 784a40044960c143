#include <cmath>
#include <map>

#include "kirzl/amp.hpp"
#include "kirzl/autograd.hpp"
#include "kirzl/comm.hpp"
#include "kirzl/ops.hpp"
#include "kirzl/optim/optimizer.hpp"
#include "kernels/optim_update.h"

namespace kirzl::amp {

namespace {

void validate(const GradScalerOptions& o) {
  KIRZL_CHECK(o.init_scale > 0.0 && std::isfinite(o.init_scale),
              "GradScaler: option 'init_scale' must be finite and > 0, got ", o.init_scale);
  KIRZL_CHECK(o.growth_factor > 1.0 && std::isfinite(o.growth_factor),
              "GradScaler: option 'growth_factor' must be finite and > 1, got ", o.growth_factor);
  KIRZL_CHECK(o.backoff_factor > 0.0 && o.backoff_factor < 1.0,
              "GradScaler: option 'backoff_factor' must be in (0, 1), got ", o.backoff_factor);
  KIRZL_CHECK(o.growth_interval > 0, "GradScaler: option 'growth_interval' must be > 0, got ", o.growth_interval);
}

}  // namespace

GradScaler::GradScaler(Options options, comm::Communicator* comm)
    : options_(options), comm_(comm), scale_(options.init_scale) {
  validate(options_);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  KIRZL_CHECK(loss.defined(), "GradScaler.scale: the loss is an undefined tensor");
  if (!options_.enabled) return loss;
  KIRZL_CHECK(is_floating(loss.dtype()), "GradScaler.scale: the loss must be floating, got ", loss.describe());
  const bool half = loss.dtype() == DType::bf16 || loss.dtype() == DType::f16;
  return (half ? loss.to(DType::f32) : loss) * scale_;
}

void GradScaler::unscale_(optim::Optimizer& optimizer) {
  if (!options_.enabled) return;
  PerOptimizer& st = per_optimizer_[&optimizer];
  KIRZL_CHECK(!st.unscaled, "GradScaler.unscale_: already called for this ", optimizer.name(),
              " optimizer since the last update()");
  KIRZL_CHECK(!st.stepped, "GradScaler.unscale_: step() was already called for this ", optimizer.name(),
              " optimizer since the last update()");
  NoGradGuard no_grad;
  const double inv_scale = 1.0 / scale_;
  // Contiguous gradients by device (type, index): one unscale kernel and one flag per device.
  std::map<std::pair<int, int>, std::vector<Tensor>> device_grads;
  std::vector<std::pair<Tensor, Tensor>> write_back;
  for (int64_t g = 0; g < optimizer.num_groups(); ++g)
    for (const Tensor& p : optimizer.params(g)) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      KIRZL_CHECK(is_floating(grad.dtype()), "GradScaler.unscale_: gradient ", grad.describe(), " of parameter ",
                  p.describe(), " must be floating");
      Tensor c = grad.is_contiguous() ? grad : grad.contiguous();
      if (!c.is_same(grad)) write_back.emplace_back(grad, c);
      const Device d = grad.device();
      device_grads[{static_cast<int>(d.type()), d.index()}].push_back(c);
    }
  st.device_flags.clear();
  for (auto& [device, grads] : device_grads) {
    Tensor flag = empty({1}, {.dtype = DType::f32, .device = grads[0].device()});
    kernels::multi_tensor_unscale(grads, inv_scale, flag, /*reset=*/true);
    st.device_flags.push_back(flag);
  }
  for (auto& [g, c] : write_back) g.copy_(c);
  st.unscaled = true;
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  {
    auto it = per_optimizer_.find(&optimizer);
    KIRZL_CHECK(it == per_optimizer_.end() || !it->second.stepped, "GradScaler.step: already called for this ",
                optimizer.name(), " optimizer since the last update()");
    if (it == per_optimizer_.end() || !it->second.unscaled) unscale_(optimizer);
  }
  PerOptimizer& st = per_optimizer_[&optimizer];
  // The only host read of a scaled step: one flag per device.
  bool found = false;
  for (const Tensor& flag : st.device_flags) found = found || flag.item() != 0.0;
  if (comm_ != nullptr && comm_->size() > 1) {
    // Max over the ranks, in a flag on the communicator's device (the CPU, or CUDA:i for NCCL).
    const Device where = comm_->device();
    Tensor f = full({1}, found ? 1.0 : 0.0, {.dtype = DType::f32, .device = where});
    comm_->all_reduce(f, {.op = comm::ReduceOp::Max, .blocking = true});
    found = f.item() != 0.0;
  }
  st.found_inf = found;
  st.stepped = true;
  last_skipped_[&optimizer] = found;
  if (!found) optimizer.step();
  return !found;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  bool any_step = false, found = false;
  for (const auto& [opt, st] : per_optimizer_) {
    any_step = any_step || st.stepped;
    found = found || (st.stepped && st.found_inf);
  }
  KIRZL_CHECK(any_step, "GradScaler.update: no step() since the last update()");
  if (found) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
  per_optimizer_.clear();
}

bool GradScaler::last_step_skipped(const optim::Optimizer& optimizer) const {
  auto it = last_skipped_.find(&optimizer);
  return it != last_skipped_.end() && it->second;
}

StateDict GradScaler::state_dict() const {
  StateDict sd;
  auto f64 = [](double v) { return scalar_tensor(v, {.dtype = DType::f64}); };
  sd.insert("scale", f64(scale_));
  sd.insert("growth_factor", f64(options_.growth_factor));
  sd.insert("backoff_factor", f64(options_.backoff_factor));
  sd.insert("growth_interval", f64(static_cast<double>(options_.growth_interval)));
  sd.insert("growth_tracker", f64(static_cast<double>(growth_tracker_)));
  return sd;
}

void GradScaler::load_state_dict(const StateDict& state) {
  const char* who = "GradScaler.load_state_dict";
  auto value = [&](const char* key) {
    const Tensor* t = state.find(key);
    KIRZL_CHECK(t != nullptr, who, ": missing entry '", key, "'");
    KIRZL_CHECK(t->defined() && t->numel() == 1, who, ": entry '", key, "' must hold one number, got ",
                t->describe());
    return t->item();
  };
  for (const auto& [key, t] : state) {
    (void)t;
    KIRZL_CHECK(key == "scale" || key == "growth_factor" || key == "backoff_factor" || key == "growth_interval" ||
                    key == "growth_tracker",
                who, ": unknown entry '", key, "'");
  }
  Options o = options_;
  const double scale = value("scale");
  o.growth_factor = value("growth_factor");
  o.backoff_factor = value("backoff_factor");
  const double interval = value("growth_interval"), tracker = value("growth_tracker");
  KIRZL_CHECK(interval == std::floor(interval) && interval > 0 && interval < 9e15, who,
              ": entry 'growth_interval' must be a positive integer, got ", interval);
  o.growth_interval = static_cast<int64_t>(interval);
  KIRZL_CHECK(scale > 0.0 && std::isfinite(scale), who, ": entry 'scale' must be finite and > 0, got ", scale);
  KIRZL_CHECK(tracker == std::floor(tracker) && tracker >= 0 && tracker < interval, who,
              ": entry 'growth_tracker' must be an integer in [0, growth_interval), got ", tracker);
  o.init_scale = scale;
  validate(o);
  options_.growth_factor = o.growth_factor;
  options_.backoff_factor = o.backoff_factor;
  options_.growth_interval = o.growth_interval;
  scale_ = scale;
  growth_tracker_ = static_cast<int64_t>(tracker);
  per_optimizer_.clear();
}

}  // namespace kirzl::amp
