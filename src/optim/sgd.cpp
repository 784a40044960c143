#include "kirzl/optim/sgd.hpp"

#include "kernels/optim_update.h"
#include "optim/option_checks.h"
#include "optim/update_loops.h"

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

void SGD::update(const Group& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  const double mu = options_.momentum;
  Tensor buf;
  bool first = false;
  if (mu != 0.0) {
    first = state.find("momentum_buffer") == nullptr;
    buf = state_buffer(state, "momentum_buffer", param);
  }
  kernels::dispatch_floating(param.dtype(), "SGD.step", [&]<typename T>() {
    using C = detail::state_t<T>;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    C* b = buf.defined() ? buf.data<C>() : nullptr;
    const C lr = static_cast<C>(group.lr), wd = static_cast<C>(group.weight_decay);
    const C m = static_cast<C>(mu), damp = static_cast<C>(1.0 - options_.dampening);
    const bool nesterov = options_.nesterov, maximize = options_.maximize;
    detail::parallel_elements(param.numel(), [&](int64_t begin, int64_t end) {
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

void SGD::update_cuda(const Group& group, std::vector<DeviceItem>& items) {
  kernels::OptimLists lists;
  std::vector<uint8_t> first(items.size(), 0);
  for (const DeviceItem& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
  }
  if (options_.momentum != 0.0) lists.state[0] = state_buffers(items, "momentum_buffer", &first);
  kernels::cuda::multi_tensor_sgd(lists, first,
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

void SGD::set_option_fields(const std::vector<OptionField>& fields) {
  SGDOptions o = options_;
  for (const auto& f : fields) {
    if (f.name == "momentum") o.momentum = f.value;
    else if (f.name == "dampening") o.dampening = f.value;
    else if (f.name == "nesterov") o.nesterov = f.value != 0.0;
    else if (f.name == "maximize") o.maximize = f.value != 0.0;
  }
  validate(o);
  options_ = o;
}

}  // namespace kirzl::optim
