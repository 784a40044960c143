// Learning-rate schedules that drive any Optimizer's per-group learning rates.
#pragma once

#include <cstdint>
#include <vector>

#include "kirzl/optim/optimizer.hpp"
#include "kirzl/state_dict.hpp"

namespace kirzl::optim {

/// Base of the schedules. A schedule maps a step number s (0, 1, 2, ...) and a group's base
/// learning rate (the optimizer's initial_lr(group)) to that group's lr.
///
/// Construction sets every group's lr to the value for s = 0; each step() advances s by one and
/// sets the lr for the new s. The usual loop is `opt.step(); sched.step();`, so optimizer step k
/// (from 0) runs with the lr of s = k.
///
/// Ownership: holds a reference to the optimizer, which must outlive the scheduler.
/// Thread safety: none; call from the thread that steps the optimizer.
class LRScheduler {
 public:
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances to the next step and sets every group's lr.
  void step();
  /// The lr of every group at last_step() (what step() or construction last set).
  std::vector<double> get_lr() const;
  /// Number of step() calls so far (0 after construction).
  int64_t last_step() const { return last_step_; }
  /// {"last_step": 0-d f64}.
  StateDict state_dict() const;
  /// Restores last_step and sets the optimizer's lrs for it. Throws Error{InvalidArgument} when
  /// the entry is missing or not a non-negative integer.
  void load_state_dict(const StateDict& state);

  /// The lr for step `step` of a group whose base lr is `base_lr`.
  virtual double lr_at(int64_t step, double base_lr) const = 0;

 protected:
  /// Binds the schedule to `optimizer` (by reference) at step 0 without touching its lrs: a
  /// derived constructor validates its options, then calls apply_lr().
  explicit LRScheduler(Optimizer& optimizer);
  /// Sets the optimizer's lrs for last_step(); derived constructors call it once their options
  /// are validated (a base constructor cannot call lr_at).
  void apply_lr();

 private:
  Optimizer& optimizer_;
  int64_t last_step_ = 0;
};

/// lr = base lr at every step.
class ConstantLR final : public LRScheduler {
 public:
  /// Sets every group's lr to its initial_lr (undoing any earlier set_lr). Never throws.
  explicit ConstantLR(Optimizer& optimizer);
  double lr_at(int64_t step, double base_lr) const override;
};

/// Options of StepLR: `{.step_size = 30, .gamma = 0.1}` divides the lr by 10 every 30 steps.
struct StepLROptions {
  int64_t step_size = 1;  ///< > 0
  double gamma = 0.1;     ///< >= 0
};

/// lr = base lr · gamma^floor(step / step_size).
class StepLR final : public LRScheduler {
 public:
  /// Sets every group's lr for step 0 (its base lr). Throws Error{InvalidArgument} naming the
  /// option when step_size <= 0 or gamma is negative or not finite.
  StepLR(Optimizer& optimizer, StepLROptions options);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  StepLROptions options_;
};

/// Options of CosineWithWarmup, in scheduler steps: `{.warmup_steps = 700, .total_steps = 19073}`.
struct CosineWithWarmupOptions {
  int64_t warmup_steps = 0;  ///< >= 0
  int64_t total_steps = 0;   ///< > 0 and >= warmup_steps
  double min_lr = 0.0;       ///< absolute floor reached at total_steps (the same for every group); >= 0
};

/// Linear warm-up from 0, then a half cosine down to min_lr:
///   s < warmup:           lr = base · s / warmup
///   warmup <= s < total:  lr = min_lr + (base - min_lr) · (1 + cos(π (s - warmup) / (total - warmup))) / 2
///   s >= total:           lr = min_lr
class CosineWithWarmup final : public LRScheduler {
 public:
  /// Sets every group's lr for step 0 (0 with a warm-up, else the base lr). Throws
  /// Error{InvalidArgument} naming the option when one is out of the range its comment gives.
  CosineWithWarmup(Optimizer& optimizer, CosineWithWarmupOptions options);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  CosineWithWarmupOptions options_;
};

/// Options of LinearDecay, in scheduler steps: `{.total_steps = 1000, .end_factor = 0.1}`.
struct LinearDecayOptions {
  int64_t total_steps = 0;   ///< > 0 and >= warmup_steps
  double end_factor = 0.0;   ///< lr at total_steps as a fraction of base; >= 0
  int64_t warmup_steps = 0;  ///< >= 0; linear warm-up from 0 first
};

/// Optional linear warm-up from 0, then linear from base to base · end_factor:
///   s < warmup:           lr = base · s / warmup
///   warmup <= s < total:  lr = base · (1 + (end_factor - 1) (s - warmup) / (total - warmup))
///   s >= total:           lr = base · end_factor
class LinearDecay final : public LRScheduler {
 public:
  /// Sets every group's lr for step 0 (0 with a warm-up, else the base lr). Throws
  /// Error{InvalidArgument} naming the option when one is out of the range its comment gives.
  LinearDecay(Optimizer& optimizer, LinearDecayOptions options);
  double lr_at(int64_t step, double base_lr) const override;

 private:
  LinearDecayOptions options_;
};

}  // namespace kirzl::optim
