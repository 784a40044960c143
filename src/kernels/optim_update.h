// Internal: the multi-tensor kernels of the optimizers, gradient clipping and loss scaling. Each
// takes a whole list of tensors on one device. The CPU kernels (kernels/cpu/optim_update.cpp) loop
// over the list with plain per-tensor loops; the CUDA kernels update the list in one or a few
// launches (Note [multi-tensor apply] in kernels/cuda/multi_tensor_apply.cuh).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/dispatch_table.h"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// The tensors of one multi-tensor optimizer update; entry k of every list belongs to parameter
/// k. Every tensor is contiguous and on the same device.
///  - params: written in place (f32, f64, bf16, f16);
///  - grads: read; the parameter's dtype, or f32 for a 16-bit parameter;
///  - masters: f32 master weights of 16-bit parameters (Note [master weights] in
///    kirzl/amp.hpp): read and written, and params[k] receives their rounded value. Empty, or an
///    undefined tensor at k, for f32/f64 parameters (those are updated in place);
///  - state[0..2]: the optimizer's buffers (f32, or f64 for f64 parameters); a list may be empty
///    when the optimizer does not use it (SGD without momentum, Adam without amsgrad).
/// Lists may mix dtypes: the kernels launch once per (param dtype, grad dtype) class.
struct OptimLists {
  std::vector<Tensor> params, grads, masters;
  std::vector<Tensor> state[3];
};
/// A stub called with OptimLists runs on the device of its parameters.
inline const Tensor* tensor_in(const OptimLists& lists) { return dispatch_detail::tensor_in(lists.params); }

/// torch.optim.SGD's rule (see kirzl/optim/sgd.hpp). state[0]: momentum buffers (when momentum
/// != 0); first[k] != 0 when buffer k was just created (it then takes the gradient as is).
struct SgdArgs {
  double lr = 0, weight_decay = 0, momentum = 0, dampening = 0;
  bool nesterov = false, maximize = false;
};
KIRZL_DECLARE_KERNEL(multi_tensor_sgd,
                     void (*)(const OptimLists& lists, const std::vector<uint8_t>& first, const SgdArgs& args));

/// Adam/AdamW (kirzl/optim/adam.hpp). state: exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad only).
/// steps[k] is parameter k's step count after this step (1 on the first); the bias corrections
/// are computed on the host from it and passed as kernel arguments, so there is no host sync.
/// Capturable (Note [capturable adam]) when device_steps is defined: `steps` and `lr` are then
/// ignored; parameter k's count is device_steps[slots[k]] (f64 on the parameters' device), which
/// the call first increments, and lr is device_lr[0] (f64, same device).
struct AdamArgs {
  double lr = 0, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool decoupled = false, amsgrad = false, maximize = false;
  Tensor device_steps;
  Tensor device_lr;
  std::vector<int64_t> slots;
};
KIRZL_DECLARE_KERNEL(multi_tensor_adam,
                     void (*)(const OptimLists& lists, const std::vector<int64_t>& steps, const AdamArgs& args));

/// LAMB (kirzl/optim/lamb.hpp). state: exp_avg, exp_avg_sq. Two launch groups: moments plus
/// per-chunk partial norms, then the update, where each block sums its tensor's partials in a
/// fixed order (deterministic trust ratios).
struct LambArgs {
  double lr = 0, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
};
KIRZL_DECLARE_KERNEL(multi_tensor_lamb,
                     void (*)(const OptimLists& lists, const std::vector<int64_t>& steps, const LambArgs& args));

/// LAMB over pieces of whole tensors (Note [sharded optimizer]) in two halves, so that the norms
/// of each whole tensor can be summed over the ranks in between. The first half updates the
/// moments of every item and returns its partial squared norms: {Σ θ², Σ r²} of item k at
/// [2k] and [2k + 1] (host values; θ is the master of a 16-bit parameter). The second half
/// applies θ -= lr · trust[k] · r to item k (rounding masters into their parameters). On CUDA
/// the first half reads the partial sums back to the host (Note [sharded LAMB on CUDA]).
KIRZL_DECLARE_KERNEL(multi_tensor_lamb_moments, std::vector<double> (*)(const OptimLists& lists,
                                                                         const std::vector<int64_t>& steps,
                                                                         const LambArgs& args));
KIRZL_DECLARE_KERNEL(multi_tensor_lamb_apply, void (*)(const OptimLists& lists, const std::vector<int64_t>& steps,
                                                       const LambArgs& args, const std::vector<double>& trust));

/// The norm_type-norm of all elements of `tensors` together (contiguous, floating, one
/// device; norm_type > 0 or +inf), reduced deterministically (per-chunk partials in f64, then
/// one block in a fixed order). Returns {0-d f64, 0-d f32} tensors on the device holding the same
/// value; nothing is read back to the host.
KIRZL_DECLARE_KERNEL(multi_tensor_norm,
                     std::pair<Tensor, Tensor> (*)(const std::vector<Tensor>& tensors, double norm_type));

/// Multiplies every element of `tensors` in place by max_norm / (total + 1e-6) when that is
/// below 1 and `total` (the 0-d f64 device tensor from multi_tensor_norm) is finite; the factor
/// is computed on the device.
KIRZL_DECLARE_KERNEL(multi_tensor_clip_by_norm,
                     void (*)(const std::vector<Tensor>& tensors, const Tensor& total, double max_norm));

/// Multiplies every element of `tensors` in place by inv_scale and sets found_inf (a 1-element
/// f32 tensor on their device) to 1 when any input element is NaN or infinite. With `reset`, found_inf is
/// first set to 0 (on CUDA an async memset on the stream); without, several calls accumulate into one
/// flag.
KIRZL_DECLARE_KERNEL(multi_tensor_unscale, void (*)(const std::vector<Tensor>& tensors, double inv_scale,
                                                    const Tensor& found_inf, bool reset));

/// Number of multi-tensor kernel launches issued by this process so far (for benchmarks); CUDA
/// only, so called as multi_tensor_launch_count.kernel(DeviceType::CUDA)().
KIRZL_DECLARE_KERNEL(multi_tensor_launch_count, int64_t (*)());

}  // namespace kirzl::kernels
