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

// ---- CosineWithWarmup, LinearDecay ----

namespace {

// The two warm-up schedules: warmup_steps of linear warm-up from 0, then from base_lr down to
// end_lr along `fall` (1 at progress 0, 0 at progress 1) until total_steps, then end_lr.
void check_warmup_schedule(const char* who, int64_t warmup_steps, int64_t total_steps) {
  KIRZL_CHECK(warmup_steps >= 0, who, ": option 'warmup_steps' must be >= 0, got ", warmup_steps);
  KIRZL_CHECK(total_steps > 0 && total_steps >= warmup_steps, who,
              ": option 'total_steps' must be > 0 and >= warmup_steps (", warmup_steps, "), got ", total_steps);
}

template <typename Fall>
double warmup_then_fall(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr, double end_lr,
                        Fall fall) {
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  if (step >= total_steps) return end_lr;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return end_lr + (base_lr - end_lr) * fall(progress);
}

}  // namespace

CosineWithWarmup::CosineWithWarmup(Optimizer& optimizer, CosineWithWarmupOptions options)
    : LRScheduler(optimizer), options_(options) {
  check_warmup_schedule("CosineWithWarmup", options_.warmup_steps, options_.total_steps);
  detail::check_non_negative("CosineWithWarmup", "min_lr", options_.min_lr);
  detail::check_finite("CosineWithWarmup", "min_lr", options_.min_lr);
  apply_lr();
}

double CosineWithWarmup::lr_at(int64_t step, double base_lr) const {
  return warmup_then_fall(step, options_.warmup_steps, options_.total_steps, base_lr, options_.min_lr,
                          [](double p) { return 0.5 * (1.0 + std::cos(std::numbers::pi * p)); });
}

LinearDecay::LinearDecay(Optimizer& optimizer, LinearDecayOptions options) : LRScheduler(optimizer), options_(options) {
  check_warmup_schedule("LinearDecay", options_.warmup_steps, options_.total_steps);
  detail::check_non_negative("LinearDecay", "end_factor", options_.end_factor);
  detail::check_finite("LinearDecay", "end_factor", options_.end_factor);
  apply_lr();
}

double LinearDecay::lr_at(int64_t step, double base_lr) const {
  return warmup_then_fall(step, options_.warmup_steps, options_.total_steps, base_lr, base_lr * options_.end_factor,
                          [](double p) { return 1.0 - p; });
}

}  // namespace kirzl::optim
