// Gradient clipping: by global norm and by value.
#pragma once

#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl::optim {

/// Clips the gradients of `params` by their global norm, as torch.nn.utils.clip_grad_norm_.
///
/// The total norm is the `norm_type`-norm of all gradient elements together (parameters whose
/// grad() is undefined are skipped): (Σ |x|^p)^(1/p), or max |x| for norm_type = +infinity.
/// It is accumulated in f64. When clip = max_norm / (total + 1e-6) is below 1, every gradient is
/// multiplied by clip in place (through its own memory, so views such as DDP buckets stay valid).
///
/// A non-finite total (a NaN or infinite gradient): throws Error{InvalidArgument} when
/// `error_if_nonfinite`, else leaves every gradient unchanged and returns the NaN/inf, so the
/// caller can skip the step.
///
/// Returns the total norm before clipping (0 when no parameter has a gradient). Throws
/// Error{InvalidArgument} for max_norm < 0 or NaN, or norm_type <= 0 or NaN, and
/// Error{Unsupported} for a gradient that is not on the CPU. Runs under NoGradGuard.
/// Thread safety: the gradients must not be used by another thread during the call.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

/// Clamps every gradient element of `params` into [-clip_value, clip_value] in place (NaN stays
/// NaN; undefined gradients are skipped). clip_value >= 0. Same devices and thread safety as
/// clip_grad_norm.
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

}  // namespace kirzl::optim
