// Optimizer base behaviour: state dicts (save, load, resume, validation), in-place updates,
// zero_grad, learning-rate access and parameter checks.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include <kirzl/optim.hpp>

#include "optim/quadratic.hpp"
#include "support/expect_error.hpp"

namespace kirzl::optim {
namespace {

using testing::Quadratic;
using testing::Values;

using Factory = std::function<std::unique_ptr<Optimizer>(const std::vector<Tensor>&)>;

struct Named {
  const char* name;
  Factory make;
};

std::vector<Named> all_optimizers() {
  auto groups = [](const std::vector<Tensor>& ps) {
    return std::vector<ParamGroup>{{.params = {ps[0], ps[1]}}, {.params = {ps[2]}, .lr = 0.02}};
  };
  return {
      {"SGD", [=](const auto& ps) { return std::make_unique<SGD>(groups(ps), SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01}); }},
      {"Adam", [=](const auto& ps) { return std::make_unique<Adam>(groups(ps), AdamOptions{.lr = 0.1, .betas = {0.9, 0.6}, .weight_decay = 0.1, .amsgrad = true}); }},
      {"AdamW", [=](const auto& ps) { return std::make_unique<AdamW>(groups(ps), AdamWOptions{.lr = 0.1}); }},
      {"LAMB", [=](const auto& ps) { return std::make_unique<LAMB>(groups(ps), LAMBOptions{.lr = 0.1}); }},
  };
}

void run_steps(const Quadratic& q, Optimizer& opt, const std::vector<Tensor>& ps, int steps) {
  for (int i = 0; i < steps; ++i) {
    testing::set_grads(q, ps);
    opt.step();
  }
}

TEST(OptimizerState, ResumeFromStateDictEqualsUninterruptedRun) {
  Quadratic q;
  for (const auto& [name, make] : all_optimizers()) {
    SCOPED_TRACE(name);
    auto ref_ps = testing::make_params(q);
    auto ref = make(ref_ps);
    run_steps(q, *ref, ref_ps, 6);

    auto ps = testing::make_params(q);
    auto first = make(ps);
    run_steps(q, *first, ps, 3);
    StateDict saved = first->state_dict();
    Values checkpoint = testing::values_of(ps);
    run_steps(q, *first, ps, 2);  // later steps must not change the saved state

    Quadratic resumed_problem = q;
    resumed_problem.init = checkpoint;
    auto ps2 = testing::make_params(resumed_problem);
    auto second = make(ps2);
    second->load_state_dict(saved);
    EXPECT_EQ(second->step_count(0), 3);
    run_steps(q, *second, ps2, 3);

    Values want = testing::values_of(ref_ps), got = testing::values_of(ps2);
    EXPECT_EQ(got, want);  // bit-identical
  }
}

TEST(OptimizerState, EntriesAreNamedAndCopied) {
  Quadratic q;
  auto ps = testing::make_params(q);
  AdamW opt(std::vector<ParamGroup>{{.params = {ps[0], ps[1]}}, {.params = {ps[2]}, .lr = 0.02}}, {.lr = 0.1});
  run_steps(q, opt, ps, 3);
  StateDict sd = opt.state_dict();
  EXPECT_EQ(sd.at("param_groups.0.lr").item(), 0.1);
  EXPECT_EQ(sd.at("param_groups.1.lr").item(), 0.02);
  EXPECT_EQ(sd.at("param_groups.1.weight_decay").item(), 0.01);
  EXPECT_EQ(sd.at("param_groups.0.lr").dtype(), DType::f64);
  EXPECT_EQ(sd.at("param_groups.0.lr").dim(), 0);
  EXPECT_EQ(sd.at("param_groups.1.params").to_vector<int64_t>(), std::vector<int64_t>{2});
  EXPECT_EQ(sd.at("options.beta2").item(), 0.999);
  EXPECT_EQ(sd.at("state.2.step").item(), 3.0);
  EXPECT_EQ(sd.at("state.0.exp_avg").shape(), ps[0].shape());
  EXPECT_EQ(sd.at("state.1.exp_avg_sq").shape(), ps[1].shape());
  EXPECT_FALSE(sd.contains("state.0.max_exp_avg_sq"));
  auto before = sd.at("state.0.exp_avg").to_vector<double>();
  run_steps(q, opt, ps, 1);
  EXPECT_EQ(sd.at("state.0.exp_avg").to_vector<double>(), before);
}

TEST(OptimizerState, LoadRestoresLrAndOptions) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam a(ps, {.lr = 0.1, .betas = {0.8, 0.9}, .amsgrad = true});
  a.set_lr(0.05);
  StateDict sd = a.state_dict();  // no state yet: only groups and options
  EXPECT_FALSE(sd.contains("state.0.step"));
  Adam b(testing::make_params(q));
  b.load_state_dict(sd);
  EXPECT_EQ(b.lr(), 0.05);
  EXPECT_EQ(b.initial_lr(), 0.1);
  EXPECT_EQ(b.options().betas.first, 0.8);
  EXPECT_TRUE(b.options().amsgrad);
}

TEST(OptimizerState, LoadValidatesAndNamesTheFirstMismatch) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.1});
  run_steps(q, opt, ps, 2);
  StateDict sd = opt.state_dict();
  using E = ErrorCode;

  // Fewer parameters: the state of parameter 2 has nowhere to go.
  Adam two({testing::make_params(q)[0], testing::make_params(q)[1]});
  EXPECT_KIRZL_ERROR(two.load_state_dict(sd), E::InvalidArgument, "Adam.load_state_dict", "parameter 2");

  // Same count, another shape.
  Quadratic other = q;
  other.shapes[1] = {3, 1};
  auto ps_other = testing::make_params(other);
  Adam shaped(ps_other);
  EXPECT_KIRZL_ERROR(shaped.load_state_dict(sd), E::InvalidArgument, "state.1.exp_avg", "[3]", "[3, 1]");
  EXPECT_EQ(shaped.step_count(0), 0);  // nothing was loaded

  // Another group layout.
  Adam grouped(std::vector<ParamGroup>{{.params = {ps[0]}}, {.params = {ps[1], ps[2]}}});
  EXPECT_KIRZL_ERROR(grouped.load_state_dict(sd), E::InvalidArgument, "param group 0", "holds 1");

  // Unknown and missing entries, bad values.
  StateDict extra = sd;
  extra.insert("state.0.momentum_buffer", zeros({2, 3}, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(opt.load_state_dict(extra), E::InvalidArgument, "state.0.momentum_buffer");
  StateDict odd = sd;
  odd.insert("bogus", zeros({1}));
  EXPECT_KIRZL_ERROR(opt.load_state_dict(odd), E::InvalidArgument, "bogus");
  StateDict bad_beta = sd;
  bad_beta.insert("options.beta1", scalar_tensor(1.5, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(opt.load_state_dict(bad_beta), E::InvalidArgument, "betas", "1.5");
  EXPECT_DOUBLE_EQ(opt.options().betas.first, 0.9);
  StateDict bad_lr = sd;
  bad_lr.insert("param_groups.0.lr", scalar_tensor(-1.0, {.dtype = DType::f64}));
  EXPECT_KIRZL_ERROR(opt.load_state_dict(bad_lr), E::InvalidArgument, "param_groups.0.lr", "-1");
  StateDict empty;
  EXPECT_KIRZL_ERROR(opt.load_state_dict(empty), E::InvalidArgument, "param group 0");

  // An SGD state does not load into Adam.
  auto ps_sgd = testing::make_params(q);
  SGD sgd(ps_sgd, {.momentum = 0.9});
  run_steps(q, sgd, ps_sgd, 1);
  EXPECT_KIRZL_ERROR(opt.load_state_dict(sgd.state_dict()), E::InvalidArgument, "Adam.load_state_dict", "momentum");
  EXPECT_EQ(opt.step_count(0), 2);
}

// check_state_dict throws exactly what load_state_dict throws (for every optimizer: a bad option
// value is caught by each optimizer's own check_option_fields), and changes nothing, neither on
// success nor on failure.
TEST(OptimizerState, CheckStateDictThrowsWhatLoadWouldAndChangesNothing) {
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.message();
    }
    return "";
  };
  for (const auto& [name, make] : all_optimizers()) {
    SCOPED_TRACE(name);
    Quadratic q;
    auto ps = testing::make_params(q);
    auto opt = make(ps);
    run_steps(q, *opt, ps, 2);
    auto ps2 = testing::make_params(q);
    auto other = make(ps2);
    run_steps(q, *other, ps2, 5);
    other->set_lr(0.5);
    const StateDict good = other->state_dict();

    std::vector<std::pair<std::string, StateDict>> bad;
    StateDict options = good;
    const std::string option = std::string("options.") + (std::string(name) == "SGD" ? "momentum" : "beta1");
    options.insert(option, scalar_tensor(std::string(name) == "SGD" ? -1.0 : 1.5, {.dtype = DType::f64}));
    bad.emplace_back("bad option", options);
    StateDict lr = good;
    lr.insert("param_groups.1.lr", scalar_tensor(-1.0, {.dtype = DType::f64}));
    bad.emplace_back("bad lr", lr);
    StateDict odd = good;
    odd.insert("state.0.bogus", zeros({2, 3}));
    bad.emplace_back("unknown buffer", odd);
    bad.emplace_back("empty", StateDict{});

    const StateDict before = opt->state_dict();
    for (const auto& [what, sd] : bad) {
      const std::string checked = error_of([&] { opt->check_state_dict(sd); });
      EXPECT_FALSE(checked.empty()) << what << " passed the check";
      EXPECT_EQ(checked, error_of([&] { opt->load_state_dict(sd); })) << what;
    }
    EXPECT_EQ(error_of([&] { opt->check_state_dict(good); }), "");
    const StateDict after = opt->state_dict();
    ASSERT_EQ(after.size(), before.size());
    for (const auto& [key, t] : before) {
      const Tensor* now = after.find(key);
      ASSERT_NE(now, nullptr) << key;
      EXPECT_EQ(now->to(DType::f64).to_vector<double>(), t.to(DType::f64).to_vector<double>()) << key << " changed";
    }
    EXPECT_DOUBLE_EQ(opt->lr(), 0.1);
    opt->load_state_dict(good);  // what was checked loads
    EXPECT_DOUBLE_EQ(opt->lr(), 0.5);
  }
}

TEST(Optimizer, UpdatesParametersInPlace) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Tensor alias = ps[0];                 // another handle, as a module would hold
  Tensor view = ps[0].select(0, 1);     // a view into the parameter
  void* data = ps[0].data_ptr();
  SGD opt(ps, {.lr = 0.1});
  run_steps(q, opt, ps, 1);
  EXPECT_EQ(ps[0].data_ptr(), data);
  EXPECT_EQ(alias.to_vector<double>(), ps[0].to_vector<double>());
  EXPECT_NE(view.to_vector<double>()[0], q.init[0][3]);
  EXPECT_EQ(view.to_vector<double>()[0], ps[0].to_vector<double>()[3]);
  EXPECT_TRUE(ps[0].requires_grad());
  EXPECT_TRUE(ps[0].is_leaf());
}

TEST(Optimizer, NonContiguousParameterIsWrittenBack) {
  Tensor base = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor p = base.t();  // [3, 2], non-contiguous
  ASSERT_FALSE(p.is_contiguous());
  p.set_grad(ones({3, 2}, {.dtype = DType::f64}));
  SGD opt({p}, {.lr = 0.5});
  opt.step();
  EXPECT_EQ(base.to_vector<double>(), (std::vector<double>{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}));
}

TEST(Optimizer, SkipsParametersWithoutGradient) {
  Quadratic q;
  auto ps = testing::make_params(q);
  Adam opt(ps, {.lr = 0.1});
  testing::set_grads(q, ps);
  ps[1].set_grad(Tensor());
  opt.step();
  EXPECT_EQ(ps[1].to_vector<double>(), q.init[1]);
  EXPECT_EQ(opt.step_count(0), 1);
  EXPECT_EQ(opt.step_count(1), 0);
  EXPECT_FALSE(opt.state_dict().contains("state.1.step"));
}

TEST(Optimizer, ZeroGrad) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(ps);
  testing::set_grads(q, ps);
  void* grad_data = ps[0].grad().data_ptr();
  opt.zero_grad(false);
  ASSERT_TRUE(ps[0].grad().defined());
  EXPECT_EQ(ps[0].grad().data_ptr(), grad_data);  // same memory (a DDP bucket view stays a view)
  for (double g : ps[0].grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  opt.zero_grad();
  for (const Tensor& p : ps) EXPECT_FALSE(p.grad().defined());
}

TEST(Optimizer, LearningRateAccess) {
  Quadratic q;
  auto ps = testing::make_params(q);
  SGD opt(std::vector<ParamGroup>{{.params = {ps[0]}}, {.params = {ps[1], ps[2]}, .lr = 0.5}}, {.lr = 0.1});
  EXPECT_EQ(opt.num_params(), 3);
  EXPECT_EQ(opt.params(1).size(), 2u);
  EXPECT_TRUE(opt.params(1)[0].is_same(ps[1]));
  opt.set_lr(0.3, 1);
  EXPECT_EQ(opt.lr(0), 0.1);
  EXPECT_EQ(opt.lr(1), 0.3);
  opt.set_lr(0.7);
  EXPECT_EQ(opt.lr(0), 0.7);
  EXPECT_EQ(opt.lr(1), 0.7);
  EXPECT_EQ(opt.initial_lr(1), 0.5);
  EXPECT_KIRZL_ERROR(opt.set_lr(-0.1), ErrorCode::InvalidArgument, "SGD", "lr", "-0.1");
  EXPECT_KIRZL_ERROR(opt.set_lr(0.1, 2), ErrorCode::InvalidArgument, "SGD", "group 2");
  EXPECT_KIRZL_ERROR(opt.lr(5), ErrorCode::InvalidArgument, "group 5");
}

TEST(Optimizer, RejectsBadParameters) {
  Quadratic q;
  auto ps = testing::make_params(q);
  using E = ErrorCode;
  EXPECT_KIRZL_ERROR(SGD({ps[0], ps[1], ps[0]}), E::InvalidArgument, "SGD", "parameter 2", "more than once");
  EXPECT_KIRZL_ERROR(Adam(std::vector<ParamGroup>{{.params = {ps[0]}}, {.params = {ps[0]}}}), E::InvalidArgument,
                     "Adam", "more than once");
  EXPECT_KIRZL_ERROR(AdamW({ps[0], zeros({2}, {.dtype = DType::i64})}), E::InvalidArgument, "AdamW", "parameter 1",
                     "floating");
  EXPECT_KIRZL_ERROR(LAMB({Tensor()}), E::InvalidArgument, "LAMB", "undefined");
}

TEST(Optimizer, CudaParameterIsUpdatedByTheFusedStep) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Tensor p = zeros({4}, {.device = Device::cuda(), .requires_grad = true});
  p.set_grad(ones({4}, {.device = Device::cuda()}));
  AdamW opt({p}, {.lr = 0.1});
  opt.step();  // first Adam step: -lr · sign(g) (up to eps)
  for (double v : p.to(Device::cpu()).to_vector<double>()) EXPECT_NEAR(v, -0.1, 1e-6);
  EXPECT_TRUE(opt.state_dict().at("state.0.exp_avg").device().is_cuda());
}

}  // namespace
}  // namespace kirzl::optim
