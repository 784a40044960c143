#include "kirzl/optim/lr_scheduler.hpp"

#include <cmath>
#include <numbers>

#include "optim/option_checks.h"

namespace kirzl::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}

LRScheduler::~LRScheduler() = default;

void LRScheduler::apply_lr() {
  for (int64_t g = 0; g < optimizer_.num_groups(); ++g)
    optimizer_.set_lr(lr_at(last_step_, optimizer_.initial_lr(g)), g);
}

void LRScheduler::step() {
  ++last_step_;
  apply_lr();
}

std::vector<double> LRScheduler::get_lr() const {
  std::vector<double> lrs;
  for (int64_t g = 0; g < optimizer_.num_groups(); ++g) lrs.push_back(lr_at(last_step_, optimizer_.initial_lr(g)));
  return lrs;
}

StateDict LRScheduler::state_dict() const {
  StateDict sd;
  sd.insert("last_step", scalar_tensor(static_cast<double>(last_step_), {.dtype = DType::f64}));
  return sd;
}

void LRScheduler::load_state_dict(const StateDict& state) {
  const Tensor* t = state.find("last_step");
  KIRZL_CHECK(t != nullptr, "LRScheduler.load_state_dict: missing entry 'last_step'");
  KIRZL_CHECK(t->defined() && t->numel() == 1, "LRScheduler.load_state_dict: entry 'last_step' must hold one number, got ",
              t->describe());
  double s = t->item();
  KIRZL_CHECK(s >= 0 && s == std::floor(s) && s < 9.0e15,
              "LRScheduler.load_state_dict: entry 'last_step' must be a non-negative integer, got ", s);
  last_step_ = static_cast<int64_t>(s);
  apply_lr();
}

// ---- ConstantLR ----

ConstantLR::ConstantLR(Optimizer& optimizer) : LRScheduler(optimizer) { apply_lr(); }

double ConstantLR::lr_at(int64_t, double base_lr) const { return base_lr; }

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, StepLROptions options) : LRScheduler(optimizer), options_(options) {
  KIRZL_CHECK(options_.step_size > 0, "StepLR: option 'step_size' must be > 0, got ", options_.step_size);
  detail::check_non_negative("StepLR", "gamma", options_.gamma);
  detail::check_finite("StepLR", "gamma", options_.gamma);
  apply_lr();
}

double StepLR::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(options_.gamma, static_cast<double>(step / options_.step_size));
}

// ---- CosineWithWarmup ----

CosineWithWarmup::CosineWithWarmup(Optimizer& optimizer, CosineWithWarmupOptions options)
    : LRScheduler(optimizer), options_(options) {
  const auto& o = options_;
  KIRZL_CHECK(o.warmup_steps >= 0, "CosineWithWarmup: option 'warmup_steps' must be >= 0, got ", o.warmup_steps);
  KIRZL_CHECK(o.total_steps > 0 && o.total_steps >= o.warmup_steps,
              "CosineWithWarmup: option 'total_steps' must be > 0 and >= warmup_steps (", o.warmup_steps, "), got ",
              o.total_steps);
  detail::check_non_negative("CosineWithWarmup", "min_lr", o.min_lr);
  detail::check_finite("CosineWithWarmup", "min_lr", o.min_lr);
  apply_lr();
}

double CosineWithWarmup::lr_at(int64_t step, double base_lr) const {
  const auto& o = options_;
  if (step < o.warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  if (step >= o.total_steps) return o.min_lr;
  double progress = static_cast<double>(step - o.warmup_steps) / static_cast<double>(o.total_steps - o.warmup_steps);
  return o.min_lr + (base_lr - o.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

// ---- LinearDecay ----

LinearDecay::LinearDecay(Optimizer& optimizer, LinearDecayOptions options) : LRScheduler(optimizer), options_(options) {
  const auto& o = options_;
  KIRZL_CHECK(o.warmup_steps >= 0, "LinearDecay: option 'warmup_steps' must be >= 0, got ", o.warmup_steps);
  KIRZL_CHECK(o.total_steps > 0 && o.total_steps >= o.warmup_steps,
              "LinearDecay: option 'total_steps' must be > 0 and >= warmup_steps (", o.warmup_steps, "), got ",
              o.total_steps);
  detail::check_non_negative("LinearDecay", "end_factor", o.end_factor);
  detail::check_finite("LinearDecay", "end_factor", o.end_factor);
  apply_lr();
}

double LinearDecay::lr_at(int64_t step, double base_lr) const {
  const auto& o = options_;
  if (step < o.warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  if (step >= o.total_steps) return base_lr * o.end_factor;
  double progress = static_cast<double>(step - o.warmup_steps) / static_cast<double>(o.total_steps - o.warmup_steps);
  return base_lr * (1.0 + (o.end_factor - 1.0) * progress);
}

}  // namespace kirzl::optim
