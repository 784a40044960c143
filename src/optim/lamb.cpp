#include "kirzl/optim/lamb.hpp"

#include <cmath>

#include "kernels/optim_update.h"
#include "optim/option_checks.h"
#include "optim/update_loops.h"

namespace kirzl::optim {

namespace {

void validate(const LAMBOptions& o) {
  detail::check_unit_interval("LAMB", "betas", o.betas.first);
  detail::check_unit_interval("LAMB", "betas", o.betas.second);
  detail::check_positive("LAMB", "eps", o.eps);
  detail::check_finite("LAMB", "eps", o.eps);
}

/// Squared norms of the weights and of the update, summed per chunk.
struct SquaredNorms {
  double w = 0.0, r = 0.0;
  SquaredNorms operator+(const SquaredNorms& o) const { return {w + o.w, r + o.r}; }
};

}  // namespace

LAMB::LAMB(std::vector<Tensor> params, LAMBOptions options) : LAMB(one_group(std::move(params)), options) {}

LAMB::LAMB(std::vector<ParamGroup> groups, LAMBOptions options)
    : Optimizer("LAMB", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate(options_);
}

void LAMB::update(const Group& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor exp_avg = state_buffer(state, "exp_avg", param);
  Tensor exp_avg_sq = state_buffer(state, "exp_avg_sq", param);
  const double t = static_cast<double>(state.step);
  const double bc1 = 1.0 - std::pow(options_.betas.first, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(options_.betas.second, t));
  kernels::dispatch_floating(param.dtype(), "LAMB.step", [&]<typename T>() {
    using C = detail::state_t<T>;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* m = exp_avg.data<C>();
    C* v = exp_avg_sq.data<C>();
    const C b1 = static_cast<C>(options_.betas.first), b2 = static_cast<C>(options_.betas.second);
    const C eps = static_cast<C>(options_.eps), wd = static_cast<C>(group.weight_decay);
    const C inv_bc1 = static_cast<C>(1.0 / bc1), inv_bc2_sqrt = static_cast<C>(1.0 / bc2_sqrt);
    // r for element i from the already-updated moments; the same expression in both passes.
    auto update_of = [&](int64_t i, C w) { return m[i] * inv_bc1 / (std::sqrt(v[i]) * inv_bc2_sqrt + eps) + wd * w; };

    SquaredNorms norms = detail::deterministic_sum<SquaredNorms>(param.numel(), [&](int64_t begin, int64_t end) {
      SquaredNorms s;
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        C d = static_cast<C>(g[i]);
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        double r = static_cast<double>(update_of(i, w));
        s.w += static_cast<double>(w) * static_cast<double>(w);
        s.r += r * r;
      }
      return s;
    });
    const double w_norm = std::sqrt(norms.w), r_norm = std::sqrt(norms.r);
    const double trust = (w_norm > 0.0 && r_norm > 0.0) ? w_norm / r_norm : 1.0;
    const C step_size = static_cast<C>(group.lr * trust);
    detail::parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        C w = static_cast<C>(p[i]);
        p[i] = static_cast<T>(w - step_size * update_of(i, w));
      }
    });
  });
}

void LAMB::update_cuda(const Group& group, std::vector<DeviceItem>& items) {
  kernels::OptimLists lists;
  std::vector<int64_t> steps;
  for (const DeviceItem& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
    steps.push_back(item.state->step);
  }
  lists.state[0] = state_buffers(items, "exp_avg");
  lists.state[1] = state_buffers(items, "exp_avg_sq");
  kernels::cuda::multi_tensor_lamb(lists, steps,
                                   {.lr = group.lr,
                                    .weight_decay = group.weight_decay,
                                    .beta1 = options_.betas.first,
                                    .beta2 = options_.betas.second,
                                    .eps = options_.eps});
}

std::vector<Optimizer::OptionField> LAMB::option_fields() const {
  return {{"beta1", options_.betas.first}, {"beta2", options_.betas.second}, {"eps", options_.eps}};
}

void LAMB::set_option_fields(const std::vector<OptionField>& fields) {
  LAMBOptions o = options_;
  for (const auto& f : fields) {
    if (f.name == "beta1") o.betas.first = f.value;
    else if (f.name == "beta2") o.betas.second = f.value;
    else if (f.name == "eps") o.eps = f.value;
  }
  validate(o);
  options_ = o;
}

}  // namespace kirzl::optim
