#include "kirzl/optim/clip.hpp"

#include <cmath>

#include "kirzl/autograd.hpp"
#include "kirzl/comm.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kernels/cpu/update_loops.h"
#include "kernels/optim_update.h"

namespace kirzl::optim {

namespace {

/// The defined gradients of `params`, checked to be floating tensors on one device.
std::vector<Tensor> defined_grads(const char* who, const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    KIRZL_CHECK(params[i].defined(), who, ": parameter ", i, " is an undefined tensor");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    KIRZL_CHECK(is_floating(g.dtype()), who, ": gradient of parameter ", i, " must be floating, got ", g.describe());
    KIRZL_CHECK(grads.empty() || g.device() == grads[0].device(), who, ": gradients on more than one device (",
                grads.empty() ? std::string() : grads[0].describe(), " and ", g.describe(), " of parameter ", i, ")");
    grads.push_back(g);
  }
  return grads;
}

/// The defined gradients of `params`, checked to be floating CPU tensors.
std::vector<Tensor> cpu_grads(const char* who, const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    KIRZL_CHECK(params[i].defined(), who, ": parameter ", i, " is an undefined tensor");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    KIRZL_CHECK_CODE(g.device().is_cpu(), ErrorCode::Unsupported, who, ": gradient of parameter ", i, " is ",
                     g.describe(), "; only CPU gradients are supported so far");
    KIRZL_CHECK(is_floating(g.dtype()), who, ": gradient of parameter ", i, " must be floating, got ", g.describe());
    grads.push_back(g);
  }
  return grads;
}

/// Runs fn on a contiguous tensor holding g's values; writes the result back when g is not
/// contiguous itself, so g's memory (and every view of it) is what changes.
template <typename Fn>
void modify_in_place(Tensor g, Fn&& fn) {
  if (g.is_contiguous()) {
    fn(g);
    return;
  }
  Tensor tmp = g.contiguous();
  fn(tmp);
  g.copy_(tmp);
}

// Note [sharded clipping]: with gradients sharded over a group, each rank reduces its own
// gradients to Σ|x|^p (max |x| for p = inf), the group sums (maxes) those partials, and every rank
// takes the p-th root of the same total: the norm of all gradients together, up to the order of
// the f64 additions. Everything stays in 0-d f64 tensors, so on CUDA nothing is read back.
Tensor norm_over_group(const Tensor& local, double norm_type, comm::Communicator& group) {
  const bool inf_norm = std::isinf(norm_type);
  Tensor part = inf_norm ? local : norm_type == 2.0 ? kirzl::operator*(local, local) : kirzl::pow(local, norm_type);
  const Device here = local.device();
  Tensor wire = part.reshape({1}).to(group.device()).contiguous();
  group.all_reduce(wire, {.op = inf_norm ? comm::ReduceOp::Max : comm::ReduceOp::Sum,
                          .tag = "clip_grad_norm_ (sharded)",
                          .blocking = true});
  Tensor total = wire.reshape({}).to(here);
  return inf_norm ? total : norm_type == 2.0 ? kirzl::sqrt(total) : kirzl::pow(total, 1.0 / norm_type);
}

/// clip_grad_norm over gradients on one device: returns the {f64, f32} 0-d tensors of the norm,
/// on that device.
std::pair<Tensor, Tensor> clip_on_device(const char* who, const std::vector<Tensor>& grads, double max_norm,
                                         const ClipOptions& options) {
  std::vector<Tensor> work;
  std::vector<std::pair<Tensor, Tensor>> write_back;
  for (const Tensor& g : grads) {
    if (g.is_contiguous()) {
      work.push_back(g);
    } else {
      work.push_back(g.contiguous());
      write_back.emplace_back(g, work.back());
    }
  }
  auto norms = kernels::multi_tensor_norm(work, options.norm_type);
  if (options.group != nullptr && options.group->size() > 1) {
    norms.first = norm_over_group(norms.first, options.norm_type, *options.group);
    norms.second = norms.first.to(DType::f32);
  }
  if (options.error_if_nonfinite) {
    const double total = norms.first.item();  // the one host sync (on CUDA), asked for
    KIRZL_CHECK(std::isfinite(total), who, ": the total norm of order ", options.norm_type, " of the gradients of ",
                grads.size(), " parameter(s) is ", total,
                "; gradients left unchanged (pass error_if_nonfinite = false to get the norm back instead)");
  }
  kernels::multi_tensor_clip_by_norm(work, norms.first, max_norm);
  for (auto& [g, c] : write_back) {
    Tensor dst = g;
    dst.copy_(c);
  }
  return norms;
}

void check_clip_args(const char* who, double max_norm, double norm_type) {
  KIRZL_CHECK(max_norm >= 0.0, who, ": 'max_norm' must be >= 0, got ", max_norm);
  KIRZL_CHECK(norm_type > 0.0, who, ": 'norm_type' must be > 0 (or infinity), got ", norm_type);
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  const char* who = "clip_grad_norm";
  check_clip_args(who, max_norm, norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads = defined_grads(who, params);
  if (grads.empty()) return 0.0;
  return clip_on_device(who, grads, max_norm, {.norm_type = norm_type, .error_if_nonfinite = error_if_nonfinite})
      .first.item();
}

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, const ClipOptions& options) {
  const char* who = "clip_grad_norm_";
  check_clip_args(who, max_norm, options.norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads = defined_grads(who, params);
  if (grads.empty()) {
    // Sharded: this rank holds no gradient but must still take part in the group's reduction.
    if (options.group != nullptr && options.group->size() > 1)
      return norm_over_group(scalar_tensor(0.0, {.dtype = DType::f64, .device = options.group->device()}),
                             options.norm_type, *options.group)
          .to(DType::f32);
    return scalar_tensor(0.0, {.dtype = DType::f32});
  }
  return clip_on_device(who, grads, max_norm, options).second;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
  const char* who = "clip_grad_value";
  KIRZL_CHECK(clip_value >= 0.0, who, ": 'clip_value' must be >= 0, got ", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& grad : cpu_grads(who, params))
    modify_in_place(grad, [&](Tensor& g) {
      kernels::dispatch_floating(g.dtype(), who, [&]<typename T>() {
        using C = kernels::cpu::state_t<T>;
        T* x = g.data<T>();
        const C hi = static_cast<C>(clip_value), lo = -hi;
        kernels::cpu::parallel_elements(g.numel(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            C v = static_cast<C>(x[i]);
            if (v > hi) x[i] = static_cast<T>(hi);
            else if (v < lo) x[i] = static_cast<T>(lo);
          }
        });
      });
    });
}

}  // namespace kirzl::optim
