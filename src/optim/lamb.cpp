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

kernels::LambArgs LAMB::args_of(const Group& group, const LAMBOptions& o) {
  return {.lr = group.lr, .weight_decay = group.weight_decay, .beta1 = o.betas.first, .beta2 = o.betas.second,
          .eps = o.eps};
}

kernels::OptimLists LAMB::lists_of(std::vector<DeviceItem>& items, std::vector<int64_t>& steps) {
  kernels::OptimLists lists;
  steps.clear();
  for (const DeviceItem& item : items) {
    lists.params.push_back(item.param);
    lists.grads.push_back(item.grad);
    lists.masters.push_back(item.master);
    steps.push_back(item.state->step);
  }
  lists.state[0] = state_buffers(items, "exp_avg");
  lists.state[1] = state_buffers(items, "exp_avg_sq");
  return lists;
}

LAMB::LAMB(std::vector<Tensor> params, LAMBOptions options) : LAMB(one_group(std::move(params)), options) {}

LAMB::LAMB(std::vector<ParamGroup> groups, LAMBOptions options)
    : Optimizer("LAMB", std::move(groups), options.lr, options.weight_decay), options_(options) {
  validate(options_);
}

void LAMB::update(const Group& group, std::vector<DeviceItem>& items) {
  std::vector<int64_t> steps;
  kernels::OptimLists lists = lists_of(items, steps);
  kernels::multi_tensor_lamb(lists, steps, args_of(group, options_));
}

// Note [sharded optimizer]: the parameters are pieces of whole tensors spread over the ranks. The
// moments and partial norms of every piece come first, then one all-reduce sums each whole
// tensor's norms (every rank makes it once per step, even with no piece of its own), then every
// piece is updated with its whole tensor's trust ratio.
void LAMB::update_all(std::vector<GroupItems>& all) {
  const WholeTensors* whole = whole_tensors();
  if (whole == nullptr) {
    Optimizer::update_all(all);
    return;
  }
  struct Pass {
    kernels::OptimLists lists;
    std::vector<int64_t> steps;
    std::vector<double> sums;
  };
  std::vector<Pass> passes(all.size());
  Tensor totals = zeros({2 * whole->count}, {.dtype = DType::f64});
  double* t = totals.data<double>();
  for (size_t g = 0; g < all.size(); ++g) {
    Pass& p = passes[g];
    p.lists = lists_of(all[g].items, p.steps);
    p.sums = kernels::multi_tensor_lamb_moments(p.lists, p.steps, args_of(*all[g].group, options_));
    for (size_t k = 0; k < all[g].items.size(); ++k) {
      const int64_t w = whole->index[all[g].items[k].index];
      t[2 * w] += p.sums[2 * k];
      t[2 * w + 1] += p.sums[2 * k + 1];
    }
  }
  whole->all_reduce_sum(totals);
  t = totals.data<double>();
  for (size_t g = 0; g < all.size(); ++g) {
    std::vector<double> trust;
    for (const DeviceItem& item : all[g].items) {
      const int64_t w = whole->index[item.index];
      const double w_norm = std::sqrt(t[2 * w]), r_norm = std::sqrt(t[2 * w + 1]);
      trust.push_back(w_norm > 0.0 && r_norm > 0.0 ? w_norm / r_norm : 1.0);
    }
    kernels::multi_tensor_lamb_apply(passes[g].lists, passes[g].steps, args_of(*all[g].group, options_), trust);
  }
}

std::vector<Optimizer::OptionField> LAMB::option_fields() const {
  return {{"beta1", options_.betas.first}, {"beta2", options_.betas.second}, {"eps", options_.eps}};
}

namespace {
LAMBOptions with_fields(LAMBOptions o, const std::vector<Optimizer::OptionField>& fields) {
  for (const auto& f : fields) {
    if (f.name == "beta1") o.betas.first = f.value;
    else if (f.name == "beta2") o.betas.second = f.value;
    else if (f.name == "eps") o.eps = f.value;
  }
  return o;
}
}  // namespace

void LAMB::set_option_fields(const std::vector<OptionField>& fields) {
  LAMBOptions o = with_fields(options_, fields);
  validate(o);
  options_ = o;
}

void LAMB::check_option_fields(const std::vector<OptionField>& fields) const { validate(with_fields(options_, fields)); }

}  // namespace kirzl::optim
