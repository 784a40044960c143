// Mixed precision: the policy kirzl follows (issue #6), and dynamic loss scaling for f16.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kirzl/state_dict.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::comm {
class Communicator;
}
namespace kirzl::optim {
class Optimizer;
}

namespace kirzl::amp {

// Note [mixed-precision policy]
// kirzl trains in reduced precision with a *module-level compute dtype*, not an autocast:
//
//     model.to(DType::bf16);                         // parameters, activations, gradients in bf16
//     optim::AdamW opt(model.parameters(), {...});   // keeps f32 master weights and moments
//
// - Every op computes in the dtype of its inputs, and the kernels that need range or precision
//   accumulate in f32 internally (GEMMs through cuBLASLt with f32 accumulation, softmax,
//   layer_norm, cross_entropy, reductions), so a bf16 model loses little by running every op in
//   bf16: there is no op list to keep in sync with kernels, no cast cache, and no hidden
//   per-call casts — what a module holds is what runs, which is easy to reason about, to test
//   (one dtype per run) and to make deterministic. The cost an autocast avoids (keeping
//   precision-sensitive *parameters* in f32) is paid instead by the optimizer's master weights
//   (Note [master weights]); loss-sensitive ops already accumulate in f32.
// - An autocast would need a dispatch layer that kirzl's ops do not have (every op would consult
//   a thread-local policy and insert casts), and its savings over the above for GPT-style models
//   are small because the GEMMs dominate and run in bf16 either way.
// - Inputs: cast them to the model's dtype (`x.to(DType::bf16)`); integer inputs (token ids,
//   labels) stay as they are. A loss computed from bf16 logits is bf16; call backward() on it
//   directly (bf16 has f32's range), or use a GradScaler for f16.
// - f16 has a narrow range: small gradients underflow to zero. Use GradScaler (below) with it;
//   bf16 does not need one.
//
// Note [master weights]
// A bf16 parameter has 8 bits of mantissa: an update smaller than 2^-9 of the weight is rounded
// away, so lr · update of a late training step is often lost entirely. Every kirzl optimizer
// therefore keeps an f32 copy ("master") of each bf16/f16 parameter in its state, updates that
// copy in f32 (moments in f32 as well) and writes the rounded value into the parameter in the
// same pass (one fused kernel on CUDA). Optimizer::state_dict() carries the masters, so a
// checkpoint resumes bit-exactly.

/// Options of GradScaler: `amp::GradScaler scaler({.init_scale = 1024})`.
struct GradScalerOptions {
  double init_scale = 65536.0;   ///< > 0, finite
  double growth_factor = 2.0;    ///< > 1
  double backoff_factor = 0.5;   ///< in (0, 1)
  int64_t growth_interval = 2000;  ///< clean steps before the scale grows; > 0
  bool enabled = true;           ///< false: every method passes through (scale 1, always steps)
};

/// Dynamic loss scaling for f16 training, as torch.amp.GradScaler:
///
///     scaler.scale(loss).backward();
///     scaler.unscale_(opt);                       // optional: before clipping gradients
///     optim::clip_grad_norm_(params, 1.0);
///     scaler.step(opt);                           // skipped when a gradient is inf/NaN
///     scaler.update();                            // back off after an overflow, grow after
///                                                 // growth_interval clean steps
///
/// unscale_ multiplies every gradient of the optimizer by 1/scale in place and records whether
/// any element was inf or NaN: on CUDA in one multi-tensor pass per device that sets a found_inf
/// flag kept in device memory (no host sync), on the CPU in a plain loop. step() reads the flags
/// (the one 4-byte device-to-host read of a scaled step) and, given a Communicator, all-reduces
/// them with max, so **every rank skips the same steps** and keeps the same scale even when only
/// one rank overflowed. update() then sets the scale: scale · backoff_factor after a skipped
/// step (and the clean-step count restarts), scale · growth_factor after growth_interval
/// consecutive clean steps.
///
/// Ownership: holds a non-owning pointer to the communicator (which must outlive the scaler)
/// and, between unscale_ and update, the optimizers' addresses (they must stay alive until
/// update()). Thread safety: none; use from the thread that runs the training loop.
class GradScaler {
 public:
  /// The options type, so that `amp::GradScaler::Options{.init_scale = 1024}` names it.
  using Options = GradScalerOptions;
  /// Validates the options (Error{InvalidArgument} naming the option). `comm`: the group whose
  /// ranks must skip alike (e.g. the DDP world); nullptr for a single process.
  explicit GradScaler(Options options = {}, comm::Communicator* comm = nullptr);

  /// loss · scale (a new tensor; differentiable). A 16-bit loss is converted to f32 first, so the
  /// scaled loss cannot overflow f16. Disabled: returns `loss`.
  Tensor scale(const Tensor& loss) const;

  /// Unscales the gradients of every parameter of `optimizer` in place (see the class comment).
  /// Call at most once per optimizer between update()s (Error{InvalidArgument} otherwise).
  /// Gradients must be floating, on the CPU or CUDA.
  void unscale_(optim::Optimizer& optimizer);

  /// unscale_ (unless already done), then optimizer.step() unless a gradient was inf/NaN on any
  /// rank. Returns true when the step ran. Call at most once per optimizer between update()s.
  bool step(optim::Optimizer& optimizer);

  /// Adjusts the scale from the steps since the last update() (a skip anywhere backs off) and
  /// forgets them. Throws Error{InvalidArgument} when no step() was made since the last update().
  void update();

  /// The current scale (1 when disabled).
  double get_scale() const { return options_.enabled ? scale_ : 1.0; }
  /// Consecutive clean steps counted towards the next growth.
  int64_t growth_tracker() const { return growth_tracker_; }
  /// The `enabled` option. When false, scale() returns the loss itself, unscale_() and update()
  /// do nothing, step() always steps and get_scale() is 1.
  bool is_enabled() const { return options_.enabled; }
  /// True when the last step() of `optimizer` was skipped (false before any).
  bool last_step_skipped(const optim::Optimizer& optimizer) const;

  /// {"scale", "growth_factor", "backoff_factor", "growth_interval", "growth_tracker"}: 0-d f64.
  StateDict state_dict() const;
  /// Restores a state_dict(); validates every entry first (Error{InvalidArgument}, unchanged).
  void load_state_dict(const StateDict& state);

 private:
  struct PerOptimizer {
    bool unscaled = false;
    bool stepped = false;
    bool found_inf = false;            // host value, known after step()
    std::vector<Tensor> device_flags;  // 1-element f32 flags on each device with gradients
  };

  Options options_;
  comm::Communicator* comm_ = nullptr;
  double scale_ = 1.0;
  int64_t growth_tracker_ = 0;
  std::unordered_map<const optim::Optimizer*, PerOptimizer> per_optimizer_;
  std::unordered_map<const optim::Optimizer*, bool> last_skipped_;
};

}  // namespace kirzl::amp
