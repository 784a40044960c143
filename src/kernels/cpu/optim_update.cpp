// CPU kernels of kernels/optim_update.h: the optimizer rules, gradient-norm clipping and loss
// unscaling, one plain (OpenMP-split) loop per tensor of the list. Moved here from src/optim/ so
// that the optimizers, clip_grad_norm and GradScaler call one stub for every device.
#include <cmath>
#include <limits>

#include "kernels/cpu/update_loops.h"
#include "kernels/dispatch.h"
#include "kernels/optim_update.h"

namespace kirzl::kernels::cpu {

namespace {

/// What a rule updates for parameter k: its f32 master (16-bit parameters, with the gradient in
/// f32) or the parameter itself.
struct Target {
  Tensor param, grad;
};

Target target_of(const OptimLists& lists, size_t k) {
  const bool has_master = k < lists.masters.size() && lists.masters[k].defined();
  if (!has_master) return {lists.params[k], lists.grads[k]};
  const Tensor& g = lists.grads[k];
  return {lists.masters[k], g.dtype() == DType::f32 ? g : g.to(DType::f32)};
}

/// After the rule ran on a master: the parameter receives its rounded value.
void round_into_param(const OptimLists& lists, size_t k) {
  if (k < lists.masters.size() && lists.masters[k].defined()) {
    Tensor p = lists.params[k];
    p.copy_(lists.masters[k]);
  }
}

Tensor state_at(const std::vector<Tensor>& list, size_t k) { return k < list.size() ? list[k] : Tensor(); }

void sgd_one(const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, const SgdArgs& a) {
  dispatch_floating(param.dtype(), "SGD.step", [&]<typename T>() {
    using C = state_t<T>;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* b = buf.defined() ? buf.data<C>() : nullptr;
    const C lr = static_cast<C>(a.lr), wd = static_cast<C>(a.weight_decay);
    const C m = static_cast<C>(a.momentum), damp = static_cast<C>(1.0 - a.dampening);
    const bool nesterov = a.nesterov, maximize = a.maximize;
    parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        C d = static_cast<C>(g[i]);
        if (maximize) d = -d;
        if (wd != 0) d += wd * w;
        if (b) {
          b[i] = first ? d : m * b[i] + damp * d;
          d = nesterov ? d + m * b[i] : b[i];
        }
        p[i] = static_cast<T>(w - lr * d);
      }
    });
  });
}

/// One fused pass over a parameter: see the rule in kirzl/optim/adam.hpp.
void adam_one(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
              const Tensor& max_exp_avg_sq, int64_t step, const AdamArgs& a) {
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(a.beta2, static_cast<double>(step)));
  dispatch_floating(param.dtype(), a.decoupled ? "AdamW.step" : "Adam.step", [&]<typename T>() {
    using C = state_t<T>;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* m = exp_avg.data<C>();
    C* v = exp_avg_sq.data<C>();
    C* vmax = max_exp_avg_sq.defined() ? max_exp_avg_sq.data<C>() : nullptr;
    const C b1 = static_cast<C>(a.beta1), b2 = static_cast<C>(a.beta2), eps = static_cast<C>(a.eps);
    const C step_size = static_cast<C>(a.lr / bc1), inv_bc2_sqrt = static_cast<C>(1.0 / bc2_sqrt);
    const C decay = static_cast<C>(a.decoupled ? 1.0 - a.lr * a.weight_decay : 1.0);
    const C l2 = static_cast<C>(a.decoupled ? 0.0 : a.weight_decay);
    const bool maximize = a.maximize;
    parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        C d = static_cast<C>(g[i]);
        if (maximize) d = -d;
        if (l2 != 0) d += l2 * w;
        w *= decay;
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        C vi = v[i];
        if (vmax) {
          vmax[i] = vmax[i] > vi ? vmax[i] : vi;
          vi = vmax[i];
        }
        p[i] = static_cast<T>(w - step_size * m[i] / (std::sqrt(vi) * inv_bc2_sqrt + eps));
      }
    });
  });
}

/// Squared norms of the weights and of the update, summed per chunk.
struct SquaredNorms {
  double w = 0.0, r = 0.0;
  SquaredNorms operator+(const SquaredNorms& o) const { return {w + o.w, r + o.r}; }
};

/// The per-step constants of LAMB's rule for parameter dtype T, and r for element i from the
/// already-updated moments: the same expression in the norm pass and the update pass.
template <typename T>
struct LambRule {
  using C = state_t<T>;
  C b1, b2, eps, wd, inv_bc1, inv_bc2_sqrt;
  LambRule(const LambArgs& a, int64_t step) {
    const double t = static_cast<double>(step);
    b1 = static_cast<C>(a.beta1);
    b2 = static_cast<C>(a.beta2);
    eps = static_cast<C>(a.eps);
    wd = static_cast<C>(a.weight_decay);
    inv_bc1 = static_cast<C>(1.0 / (1.0 - std::pow(a.beta1, t)));
    inv_bc2_sqrt = static_cast<C>(1.0 / std::sqrt(1.0 - std::pow(a.beta2, t)));
  }
  C update_of(C m, C v, C w) const { return m * inv_bc1 / (std::sqrt(v) * inv_bc2_sqrt + eps) + wd * w; }
};

/// LAMB's first pass over one tensor: updates the moments, returns the squared norms of θ and r.
SquaredNorms lamb_moments_one(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                              int64_t step, const LambArgs& a) {
  SquaredNorms norms;
  dispatch_floating(param.dtype(), "LAMB.step", [&]<typename T>() {
    using C = state_t<T>;
    const LambRule<T> rule(a, step);
    const T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* m = exp_avg.data<C>();
    C* v = exp_avg_sq.data<C>();
    norms = deterministic_sum<SquaredNorms>(param.numel(), [&](int64_t begin, int64_t end) {
      SquaredNorms s;
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        C d = static_cast<C>(g[i]);
        m[i] = rule.b1 * m[i] + (1 - rule.b1) * d;
        v[i] = rule.b2 * v[i] + (1 - rule.b2) * d * d;
        double r = static_cast<double>(rule.update_of(m[i], v[i], w));
        s.w += static_cast<double>(w) * static_cast<double>(w);
        s.r += r * r;
      }
      return s;
    });
  });
  return norms;
}

/// LAMB's trust ratio from the squared norms of a whole tensor.
double lamb_trust(const SquaredNorms& n) {
  const double w_norm = std::sqrt(n.w), r_norm = std::sqrt(n.r);
  return (w_norm > 0.0 && r_norm > 0.0) ? w_norm / r_norm : 1.0;
}

/// LAMB's second pass over one tensor: θ -= lr · trust · r.
void lamb_apply_one(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq, int64_t step,
                    const LambArgs& a, double trust) {
  dispatch_floating(param.dtype(), "LAMB.step", [&]<typename T>() {
    using C = state_t<T>;
    const LambRule<T> rule(a, step);
    T* p = param.data<T>();
    const C* m = exp_avg.data<C>();
    const C* v = exp_avg_sq.data<C>();
    const C step_size = static_cast<C>(a.lr * trust);
    parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        p[i] = static_cast<T>(w - step_size * rule.update_of(m[i], v[i], w));
      }
    });
  });
}

/// Largest |x| so far, NaN-propagating (a NaN anywhere makes the norm NaN).
struct MaxAbs {
  double v = 0.0;
  MaxAbs operator+(const MaxAbs& o) const {
    if (std::isnan(v) || std::isnan(o.v)) return {std::numeric_limits<double>::quiet_NaN()};
    return {v > o.v ? v : o.v};
  }
};

}  // namespace

void multi_tensor_sgd(const OptimLists& lists, const std::vector<uint8_t>& first, const SgdArgs& args) {
  for (size_t k = 0; k < lists.params.size(); ++k) {
    const Target t = target_of(lists, k);
    sgd_one(t.param, t.grad, state_at(lists.state[0], k), k < first.size() && first[k] != 0, args);
    round_into_param(lists, k);
  }
}

void multi_tensor_adam(const OptimLists& lists, const std::vector<int64_t>& steps, const AdamArgs& args) {
  AdamArgs a = args;
  double* counts = nullptr;
  if (args.device_steps.defined()) {  // capturable: the counters and lr are in host memory here
    KIRZL_CHECK(args.slots.size() == lists.params.size() && args.device_steps.dtype() == DType::f64 &&
                    args.device_lr.defined() && args.device_lr.dtype() == DType::f64,
                "Adam.step: capturable counters must be f64 with one slot per parameter");
    counts = args.device_steps.data<double>();
    a.lr = args.device_lr.data<double>()[0];
  }
  for (size_t k = 0; k < lists.params.size(); ++k) {
    const Target t = target_of(lists, k);
    int64_t step = steps[k];
    if (counts) step = static_cast<int64_t>(counts[args.slots[k]] += 1.0);
    adam_one(t.param, t.grad, lists.state[0][k], lists.state[1][k], state_at(lists.state[2], k), step, a);
    round_into_param(lists, k);
  }
}

void multi_tensor_lamb(const OptimLists& lists, const std::vector<int64_t>& steps, const LambArgs& args) {
  for (size_t k = 0; k < lists.params.size(); ++k) {
    const Target t = target_of(lists, k);
    const SquaredNorms n = lamb_moments_one(t.param, t.grad, lists.state[0][k], lists.state[1][k], steps[k], args);
    lamb_apply_one(t.param, lists.state[0][k], lists.state[1][k], steps[k], args, lamb_trust(n));
    round_into_param(lists, k);
  }
}

std::vector<double> multi_tensor_lamb_moments(const OptimLists& lists, const std::vector<int64_t>& steps,
                                              const LambArgs& args) {
  std::vector<double> sums;
  for (size_t k = 0; k < lists.params.size(); ++k) {
    const Target t = target_of(lists, k);
    const SquaredNorms n = lamb_moments_one(t.param, t.grad, lists.state[0][k], lists.state[1][k], steps[k], args);
    sums.push_back(n.w);
    sums.push_back(n.r);
  }
  return sums;
}

void multi_tensor_lamb_apply(const OptimLists& lists, const std::vector<int64_t>& steps, const LambArgs& args,
                             const std::vector<double>& trust) {
  for (size_t k = 0; k < lists.params.size(); ++k) {
    const Target t = target_of(lists, k);
    lamb_apply_one(t.param, lists.state[0][k], lists.state[1][k], steps[k], args, trust[k]);
    round_into_param(lists, k);
  }
}

std::pair<Tensor, Tensor> multi_tensor_norm(const std::vector<Tensor>& tensors, double norm_type) {
  const char* who = "clip_grad_norm";
  const bool inf_norm = std::isinf(norm_type);
  double accum = 0.0;
  for (const Tensor& g : tensors) {
    dispatch_floating(g.dtype(), who, [&]<typename T>() {
      const T* x = g.data<T>();
      if (inf_norm) {
        MaxAbs m = deterministic_sum<MaxAbs>(g.numel(), [&](int64_t b, int64_t e) {
          MaxAbs s;
          for (int64_t i = b; i < e; ++i) s = s + MaxAbs{std::fabs(to_double(x[i]))};
          return s;
        });
        accum = (MaxAbs{accum} + m).v;
      } else {
        accum += deterministic_sum<double>(g.numel(), [&](int64_t b, int64_t e) {
          double s = 0.0;
          if (norm_type == 2.0) {
            for (int64_t i = b; i < e; ++i) {
              double v = to_double(x[i]);
              s += v * v;
            }
          } else {
            for (int64_t i = b; i < e; ++i) s += std::pow(std::fabs(to_double(x[i])), norm_type);
          }
          return s;
        });
      }
    });
  }
  const double total = inf_norm ? accum : norm_type == 2.0 ? std::sqrt(accum) : std::pow(accum, 1.0 / norm_type);
  return {scalar_tensor(total, {.dtype = DType::f64}), scalar_tensor(total, {.dtype = DType::f32})};
}

void multi_tensor_clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& total, double max_norm) {
  const double norm = total.item();
  if (!std::isfinite(norm)) return;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return;
  for (const Tensor& g : tensors) {
    dispatch_floating(g.dtype(), "clip_grad_norm", [&]<typename T>() {
      using C = state_t<T>;
      T* x = g.data<T>();
      const C c = static_cast<C>(coef);
      parallel_elements(g.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x[i] = static_cast<T>(static_cast<C>(x[i]) * c);
      });
    });
  }
}

void multi_tensor_unscale(const std::vector<Tensor>& tensors, double inv_scale, const Tensor& found_inf, bool reset) {
  float* flag = found_inf.data<float>();
  if (reset) *flag = 0.0f;
  for (const Tensor& g : tensors) {
    bool found = false;
    dispatch_floating(g.dtype(), "GradScaler.unscale_", [&]<typename T>() {
      using C = state_t<T>;
      T* x = g.data<T>();
      const C inv = static_cast<C>(inv_scale);
      struct Flag {
        bool v = false;
        Flag operator+(const Flag& o) const { return {v || o.v}; }
      };
      found = deterministic_sum<Flag>(g.numel(), [&](int64_t b, int64_t e) {
                bool bad = false;
                for (int64_t i = b; i < e; ++i) {
                  C v = static_cast<C>(x[i]);
                  bad = bad || !std::isfinite(v);
                  x[i] = static_cast<T>(v * inv);
                }
                return Flag{bad};
              }).v;
    });
    if (found) *flag = 1.0f;
  }
}

void register_optim_update_kernels() {
  KIRZL_REGISTER_KERNEL(multi_tensor_sgd, DeviceType::CPU, &multi_tensor_sgd);
  KIRZL_REGISTER_KERNEL(multi_tensor_adam, DeviceType::CPU, &multi_tensor_adam);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb, DeviceType::CPU, &multi_tensor_lamb);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb_moments, DeviceType::CPU, &multi_tensor_lamb_moments);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb_apply, DeviceType::CPU, &multi_tensor_lamb_apply);
  KIRZL_REGISTER_KERNEL(multi_tensor_norm, DeviceType::CPU, &multi_tensor_norm);
  KIRZL_REGISTER_KERNEL(multi_tensor_clip_by_norm, DeviceType::CPU, &multi_tensor_clip_by_norm);
  KIRZL_REGISTER_KERNEL(multi_tensor_unscale, DeviceType::CPU, &multi_tensor_unscale);
}

}  // namespace kirzl::kernels::cpu
