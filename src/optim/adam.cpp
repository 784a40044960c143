#include "kirzl/optim/adam.hpp"

#include <cmath>

#include "kernels/optim_update.h"
#include "optim/option_checks.h"
#include "optim/update_loops.h"

namespace kirzl::optim {

namespace {

/// The options Adam and AdamW share, plus how weight decay enters.
struct AdamConfig {
  double beta1, beta2, eps;
  bool amsgrad, maximize;
  bool decoupled;  // AdamW
};

template <typename Options>
void validate(const char* who, const Options& o) {
  detail::check_unit_interval(who, "betas", o.betas.first);
  detail::check_unit_interval(who, "betas", o.betas.second);
  detail::check_positive(who, "eps", o.eps);
  detail::check_finite(who, "eps", o.eps);
}

template <typename Options>
AdamConfig config_of(const Options& o, bool decoupled) {
  return {o.betas.first, o.betas.second, o.eps, o.amsgrad, o.maximize, decoupled};
}

template <typename Options>
std::vector<Optimizer::OptionField> fields_of(const Options& o) {
  return {{"beta1", o.betas.first},
          {"beta2", o.betas.second},
          {"eps", o.eps},
          {"amsgrad", o.amsgrad ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

template <typename Options>
Options with_fields(Options o, const std::vector<Optimizer::OptionField>& fields) {
  for (const auto& f : fields) {
    if (f.name == "beta1") o.betas.first = f.value;
    else if (f.name == "beta2") o.betas.second = f.value;
    else if (f.name == "eps") o.eps = f.value;
    else if (f.name == "amsgrad") o.amsgrad = f.value != 0.0;
    else if (f.name == "maximize") o.maximize = f.value != 0.0;
  }
  return o;
}

/// One fused pass over a parameter: see the rule in adam.hpp.
void adam_update(const char* who, const AdamConfig& c, double lr, double weight_decay, const Tensor& param,
                 const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq,
                 int64_t step) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, static_cast<double>(step)));
  kernels::dispatch_floating(param.dtype(), who, [&]<typename T>() {
    using C = detail::state_t<T>;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* m = exp_avg.data<C>();
    C* v = exp_avg_sq.data<C>();
    C* vmax = max_exp_avg_sq.defined() ? max_exp_avg_sq.data<C>() : nullptr;
    const C b1 = static_cast<C>(c.beta1), b2 = static_cast<C>(c.beta2), eps = static_cast<C>(c.eps);
    const C step_size = static_cast<C>(lr / bc1), inv_bc2_sqrt = static_cast<C>(1.0 / bc2_sqrt);
    const C decay = static_cast<C>(c.decoupled ? 1.0 - lr * weight_decay : 1.0);
    const C l2 = static_cast<C>(c.decoupled ? 0.0 : weight_decay);
    const bool maximize = c.maximize;
    detail::parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
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

/// The fused CUDA step of Adam/AdamW over `items`.
/// (Items = std::vector<Optimizer::DeviceItem>, a protected type.)
template <typename Items>
void adam_cuda(const AdamConfig& c, double lr, double weight_decay, const Items& items,
               std::vector<Tensor> exp_avg, std::vector<Tensor> exp_avg_sq, std::vector<Tensor> max_exp_avg_sq) {
  kernels::OptimLists lists;
  std::vector<int64_t> steps;
  for (const auto& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
    steps.push_back(item.state->step);
  }
  lists.state[0] = std::move(exp_avg);
  lists.state[1] = std::move(exp_avg_sq);
  lists.state[2] = std::move(max_exp_avg_sq);
  kernels::cuda::multi_tensor_adam(lists, steps,
                                   {.lr = lr,
                                    .weight_decay = weight_decay,
                                    .beta1 = c.beta1,
                                    .beta2 = c.beta2,
                                    .eps = c.eps,
                                    .decoupled = c.decoupled,
                                    .amsgrad = c.amsgrad,
                                    .maximize = c.maximize});
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(one_group(std::move(params)), options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Optimizer("Adam", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate("Adam", options_);
}

void Adam::update(const Group& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor vmax = options_.amsgrad ? state_buffer(state, "max_exp_avg_sq", param) : Tensor();
  adam_update("Adam.step", config_of(options_, false), group.lr, group.weight_decay, param, grad,
              state_buffer(state, "exp_avg", param), state_buffer(state, "exp_avg_sq", param), vmax, state.step);
}

void Adam::update_cuda(const Group& group, std::vector<DeviceItem>& items) {
  std::vector<Tensor> vmax = options_.amsgrad ? state_buffers(items, "max_exp_avg_sq") : std::vector<Tensor>{};
  adam_cuda(config_of(options_, false), group.lr, group.weight_decay, items,
            state_buffers(items, "exp_avg"), state_buffers(items, "exp_avg_sq"), std::move(vmax));
}

std::vector<Optimizer::OptionField> Adam::option_fields() const { return fields_of(options_); }

void Adam::set_option_fields(const std::vector<OptionField>& fields) {
  AdamOptions o = with_fields(options_, fields);
  validate("Adam", o);
  options_ = o;
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options) : AdamW(one_group(std::move(params)), options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer("AdamW", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate("AdamW", options_);
}

void AdamW::update(const Group& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor vmax = options_.amsgrad ? state_buffer(state, "max_exp_avg_sq", param) : Tensor();
  adam_update("AdamW.step", config_of(options_, true), group.lr, group.weight_decay, param, grad,
              state_buffer(state, "exp_avg", param), state_buffer(state, "exp_avg_sq", param), vmax, state.step);
}

void AdamW::update_cuda(const Group& group, std::vector<DeviceItem>& items) {
  std::vector<Tensor> vmax = options_.amsgrad ? state_buffers(items, "max_exp_avg_sq") : std::vector<Tensor>{};
  adam_cuda(config_of(options_, true), group.lr, group.weight_decay, items,
            state_buffers(items, "exp_avg"), state_buffers(items, "exp_avg_sq"), std::move(vmax));
}

std::vector<Optimizer::OptionField> AdamW::option_fields() const { return fields_of(options_); }

void AdamW::set_option_fields(const std::vector<OptionField>& fields) {
  AdamWOptions o = with_fields(options_, fields);
  validate("AdamW", o);
  options_ = o;
}

}  // namespace kirzl::optim
