#include "kirzl/optim/sgd.hpp"

#include "kernels/optim_update.h"
#include "optim/option_checks.h"

namespace kirzl::optim {

namespace {

void validate(const SGDOptions& o) {
  detail::check_non_negative("SGD", "momentum", o.momentum);
  detail::check_finite("SGD", "momentum", o.momentum);
  detail::check_finite("SGD", "dampening", o.dampening);
  KIRZL_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
              "SGD: option 'nesterov' requires momentum > 0 and dampening == 0, got momentum ", o.momentum,
              " and dampening ", o.dampening);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(one_group(std::move(params)), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate(options_);
}

void SGD::update(const Group& group, std::vector<DeviceItem>& items) {
  kernels::OptimLists lists;
  std::vector<uint8_t> first(items.size(), 0);
  for (const DeviceItem& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
  }
  if (options_.momentum != 0.0) lists.state[0] = state_buffers(items, "momentum_buffer", &first);
  kernels::multi_tensor_sgd(lists, first,
                            {.lr = group.lr,
                             .weight_decay = group.weight_decay,
                             .momentum = options_.momentum,
                             .dampening = options_.dampening,
                             .nesterov = options_.nesterov,
                             .maximize = options_.maximize});
}

std::vector<Optimizer::OptionField> SGD::option_fields() const {
  return {{"momentum", options_.momentum},
          {"dampening", options_.dampening},
          {"nesterov", options_.nesterov ? 1.0 : 0.0},
          {"maximize", options_.maximize ? 1.0 : 0.0}};
}

namespace {
SGDOptions with_fields(SGDOptions o, const std::vector<Optimizer::OptionField>& fields) {
  for (const auto& f : fields) {
    if (f.name == "momentum") o.momentum = f.value;
    else if (f.name == "dampening") o.dampening = f.value;
    else if (f.name == "nesterov") o.nesterov = f.value != 0.0;
    else if (f.name == "maximize") o.maximize = f.value != 0.0;
  }
  return o;
}
}  // namespace

void SGD::set_option_fields(const std::vector<OptionField>& fields) {
  SGDOptions o = with_fields(options_, fields);
  validate(o);
  options_ = o;
}

void SGD::check_option_fields(const std::vector<OptionField>& fields) const { validate(with_fields(options_, fields)); }

}  // namespace kirzl::optim
