// Gradient clipping: by global norm and by value.
#pragma once

#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl::comm {
class Communicator;
}  // namespace kirzl::comm

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
/// Error{InvalidArgument} for max_norm < 0 or NaN, or norm_type <= 0 or NaN, and for gradients
/// on more than one device. Runs under NoGradGuard.
///
/// Devices: all gradients on the CPU (plain loops), or all on one CUDA device: then this is
/// clip_grad_norm_ below followed by reading the norm back, which waits for the GPU (use
/// clip_grad_norm_ in a training loop).
/// Thread safety: the gradients must not be used by another thread during the call.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

/// Options of clip_grad_norm_.
struct ClipOptions {
  double norm_type = 2.0;           ///< > 0, or +infinity for the max norm
  bool error_if_nonfinite = false;  ///< on CUDA this reads the norm back: one host sync
  /// Gradients sharded over the ranks of `group` (e.g. DistributedDataParallel with
  /// DDPOptions::shard, whose clip_grad_norm_ passes its communicator): the norm is that of every
  /// rank's gradients together (Note [sharded clipping]), and every rank scales by the same
  /// factor. A collective: every rank of the group must call it, also one without gradients.
  /// nullptr (the default): the gradients given are all there is.
  comm::Communicator* group = nullptr;
};

/// clip_grad_norm without a host sync: the same rule, but the total norm is returned as a 0-d
/// f32 tensor on the gradients' device (a CPU 0 when no parameter has a gradient).
///
/// On CUDA: one deterministic multi-tensor reduction (per-chunk partial sums in f64, then one
/// block in a fixed order; the same result on every run) and one multi-tensor scaling launch
/// that reads the norm from device memory, all on the device's current stream; the call returns
/// before they run, and nothing is read back unless error_if_nonfinite. The returned tensor is
/// valid in stream order (read it later, e.g. for logging, with .item()). Non-contiguous
/// gradients are clipped through a contiguous copy written back with copy_.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, const ClipOptions& options = {});

/// Clamps every gradient element of `params` into [-clip_value, clip_value] in place (NaN stays
/// NaN; undefined gradients are skipped). clip_value >= 0. CPU gradients only
/// (Error{Unsupported} otherwise); thread safety as clip_grad_norm.
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

}  // namespace kirzl::optim
