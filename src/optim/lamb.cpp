#include "kirzl/optim/lamb.hpp"

#include <cmath>

#include "kernels/optim_update.h"
#include "optim/option_checks.h"

namespace kirzl::optim {

namespace {

void validate(const LAMBOptions& o) {
  detail::check_unit_interval("LAMB", "betas", o.betas.first);
  detail::check_unit_interval("LAMB", "betas", o.betas.second);
  detail::check_positive("LAMB", "eps", o.eps);
  detail::check_finite("LAMB", "eps", o.eps);
}

}  // namespace

LAMB::LAMB(std::vector<Tensor> params, LAMBOptions options) : LAMB(one_group(std::move(params)), options) {}

LAMB::LAMB(std::vector<ParamGroup> groups, LAMBOptions options)
    : Optimizer("LAMB", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate(options_);
}

void LAMB::update(const Group& group, std::vector<DeviceItem>& items) {
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
  kernels::multi_tensor_lamb(lists, steps,
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
