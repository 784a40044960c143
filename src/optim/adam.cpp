#include "kirzl/optim/adam.hpp"

#include <cmath>

#include "kernels/optim_update.h"
#include "optim/option_checks.h"

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

/// The step of Adam/AdamW over `items` (all on one device).
/// (Items = std::vector<Optimizer::DeviceItem>, a protected type.)
template <typename Items>
void adam_step(const AdamConfig& c, double lr, double weight_decay, const Items& items,
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
  kernels::multi_tensor_adam(lists, steps,
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

namespace detail {

template <typename OptionsT, bool kDecoupled>
AdamFamily<OptionsT, kDecoupled>::AdamFamily(std::vector<Tensor> params, OptionsT options)
    : AdamFamily(one_group(std::move(params)), options) {}

template <typename OptionsT, bool kDecoupled>
AdamFamily<OptionsT, kDecoupled>::AdamFamily(std::vector<ParamGroup> groups, OptionsT options)
    : Optimizer(kDecoupled ? "AdamW" : "Adam", std::move(groups), options.lr, options.weight_decay),
      options_(options) {
  validate(name().c_str(), options_);
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::update(const Group& group, std::vector<DeviceItem>& items) {
  std::vector<Tensor> vmax = options_.amsgrad ? state_buffers(items, "max_exp_avg_sq") : std::vector<Tensor>{};
  adam_step(config_of(options_, kDecoupled), group.lr, group.weight_decay, items, state_buffers(items, "exp_avg"),
            state_buffers(items, "exp_avg_sq"), std::move(vmax));
}

template <typename OptionsT, bool kDecoupled>
std::vector<Optimizer::OptionField> AdamFamily<OptionsT, kDecoupled>::option_fields() const {
  return fields_of(options_);
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::set_option_fields(const std::vector<OptionField>& fields) {
  OptionsT o = with_fields(options_, fields);
  validate(name().c_str(), o);
  options_ = o;
}

template <typename OptionsT, bool kDecoupled>
void AdamFamily<OptionsT, kDecoupled>::check_option_fields(const std::vector<OptionField>& fields) const {
  validate(name().c_str(), with_fields(options_, fields));
}

template class AdamFamily<AdamOptions, false>;
template class AdamFamily<AdamWOptions, true>;

}  // namespace detail

}  // namespace kirzl::optim
