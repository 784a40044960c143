// Adam/AdamW with capturable = true (Note [capturable adam]) on the CPU, where the same bookkeeping
// runs with the counters in host memory: the same numbers as capturable = false, bit for bit,
// with parameters that miss a step, lr changed by set_lr and a scheduler between steps, and a
// state_dict loaded mid-run.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>
#include <vector>

#include "support/cuda_compare.hpp"  // bitwise_equal

using namespace kirzl;
using kirzl::testing::bitwise_equal;

namespace {

struct Params {
  std::vector<Tensor> params;
  Params() {
    Generator gen(3);
    params = {randn({5, 7}, {}, &gen).requires_grad_(), randn({7}, {}, &gen).requires_grad_(),
              randn({4}, {.dtype = DType::f64}, &gen).requires_grad_()};
  }
  // A step's gradients; the second parameter gets none on odd steps (so its count lags).
  void set_grads(int step) {
    for (size_t k = 0; k < params.size(); ++k) {
      if (k == 1 && step % 2 == 1) {
        params[k].set_grad(Tensor());
        continue;
      }
      Generator gen(100 + 10 * static_cast<uint64_t>(step) + k);
      params[k].set_grad(randn(params[k].shape(), {.dtype = params[k].dtype()}, &gen));
    }
  }
};

template <typename Opt, typename Options>
void expect_same_steps(Options options) {
  Params plain_run, capt_run;
  Opt plain(plain_run.params, options);
  options.capturable = true;
  Opt capt(capt_run.params, options);
  for (int step = 0; step < 7; ++step) {
    if (step == 3) {
      plain.set_lr(plain.lr() * 0.5);
      capt.set_lr(capt.lr() * 0.5);
    }
    plain_run.set_grads(step);
    capt_run.set_grads(step);
    plain.step();
    capt.step();
    for (size_t k = 0; k < plain_run.params.size(); ++k)
      EXPECT_TRUE(bitwise_equal(capt_run.params[k], plain_run.params[k])) << "step " << step << ", parameter " << k;
  }
}

}  // namespace

TEST(AdamCapturable, AdamWOnTheCpuEqualsTheHostScalars) {
  expect_same_steps<optim::AdamW>(optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.1});
}

TEST(AdamCapturable, AdamWithAmsgradOnTheCpuEqualsTheHostScalars) {
  expect_same_steps<optim::Adam>(optim::AdamOptions{.lr = 1e-2, .weight_decay = 0.01, .amsgrad = true});
}

TEST(AdamCapturable, SchedulerAndLoadedStateReachTheCounters) {
  Params plain_run, capt_run;
  optim::AdamW plain(plain_run.params, {.lr = 1e-2});
  optim::AdamW capt(capt_run.params, {.lr = 1e-2, .capturable = true});
  optim::StepLR plain_sched(plain, {.step_size = 2, .gamma = 0.3});
  optim::StepLR capt_sched(capt, {.step_size = 2, .gamma = 0.3});
  StateDict plain_saved, capt_saved;
  for (int step = 0; step < 8; ++step) {
    if (step == 3) plain_saved = plain.state_dict(), capt_saved = capt.state_dict();
    if (step == 6) plain.load_state_dict(plain_saved), capt.load_state_dict(capt_saved);  // counts back to 3
    plain_run.set_grads(step);
    capt_run.set_grads(step);
    plain.step();
    capt.step();
    plain_sched.step();
    capt_sched.step();
    for (size_t k = 0; k < plain_run.params.size(); ++k)
      EXPECT_TRUE(bitwise_equal(capt_run.params[k], plain_run.params[k])) << "step " << step << ", parameter " << k;
  }
}
