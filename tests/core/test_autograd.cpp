#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;

namespace {
Tensor vec(std::vector<double> v) { return from_vector<double>(v).requires_grad_(); }
}  // namespace

TEST(Autograd, ChainRuleAndFanOut) {
  auto x = vec({1, 2, 3});
  auto y = sum(x * x + x * 3.0);  // dy/dx = 2x + 3
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_EQ(y.grad_fn()->name(), "sum");
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  auto x = vec({1, 2});
  sum(x * 2.0).backward();
  sum(x * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 5}));
}

TEST(Autograd, BackwardWithGivenGradient) {
  auto x = vec({1, 2, 3});
  auto y = x * 2.0;
  y.backward(from_vector<double>({1, 10, 100}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 20, 200}));
}

TEST(Autograd, RetainGraphAndFreedGraph) {
  auto x = vec({1, 2});
  auto y = sum(x * x);
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));
  EXPECT_KIRZL_ERROR(y.backward(), ErrorCode::InvalidArgument, "second time", "retain_graph");
}

TEST(Autograd, BadBackwardCalls) {
  auto x = vec({1, 2});
  EXPECT_KIRZL_ERROR((x * 2.0).backward(), ErrorCode::InvalidArgument, "non-scalar", "f64[2]");
  auto c = from_vector<double>({1, 2});
  EXPECT_KIRZL_ERROR(sum(c).backward(), ErrorCode::InvalidArgument, "does not require grad");
  EXPECT_KIRZL_ERROR((x * 2.0).backward(from_vector<double>({1, 2, 3})), ErrorCode::InvalidArgument, "f64[3]", "f64[2]");
  EXPECT_KIRZL_ERROR((x * 2.0).requires_grad_(false), ErrorCode::InvalidArgument, "only leaves");
}

TEST(Autograd, NoGradGuardAndDetach) {
  auto x = vec({1, 2});
  {
    NoGradGuard g;
    EXPECT_FALSE(grad_enabled());
    auto y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      NoGradGuard nested;
    }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  auto d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  auto z = sum(d * x);  // d is a constant here
  z.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4}));
}

TEST(Autograd, TensorHooksSeeAndReplaceGradients) {
  auto x = vec({1, 2});
  auto h = x * 3.0;
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) {
    seen = g.to_vector<double>();
    return g * 10.0;  // replace
  });
  sum(h * h).backward();  // d/dh = 2h = [6, 12]
  EXPECT_EQ(seen, (std::vector<double>{6, 12}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{180, 360}));

  auto y = vec({1});
  auto handle = y.register_hook([](const Tensor& g) { return g * 0.0; });
  EXPECT_TRUE(y.remove_hook(handle));
  EXPECT_FALSE(y.remove_hook(handle));
  sum(y * 5.0).backward();
  EXPECT_EQ(y.grad().item(), 5.0);
}

TEST(Autograd, PostAccumulateGradHooksFireAfterAccumulationInReverseOrder) {
  // A three-layer chain: the last layer's parameter is ready first (what DDP bucketing relies on).
  auto w1 = vec({2}), w2 = vec({3}), w3 = vec({4});
  std::vector<std::string> order;
  std::vector<double> grads_seen;
  w1.register_post_accumulate_grad_hook([&](Tensor& p) { order.push_back("w1"); grads_seen.push_back(p.grad().item()); });
  w2.register_post_accumulate_grad_hook([&](Tensor& p) { order.push_back("w2"); grads_seen.push_back(p.grad().item()); });
  w3.register_post_accumulate_grad_hook([&](Tensor& p) { order.push_back("w3"); grads_seen.push_back(p.grad().item()); });
  auto x = from_vector<double>({1});
  auto out = sum(((x * w1) * w2) * w3);
  out.backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w3", "w2", "w1"}));
  EXPECT_EQ(grads_seen, (std::vector<double>{6, 8, 12}));
  EXPECT_KIRZL_ERROR((w1 * 2.0).register_post_accumulate_grad_hook([](Tensor&) {}), ErrorCode::InvalidArgument,
                     "not a leaf");
}

TEST(Autograd, PreallocatedGradIsAccumulatedInPlace) {
  // The reducer sets .grad to a view of a bucket; accumulation must write into that view.
  auto bucket = zeros({4}, {.dtype = DType::f64});
  auto w = vec({1, 2});
  w.set_grad(bucket.slice(0, 1, 3));
  sum(w * 3.0).backward();
  EXPECT_EQ(bucket.to_vector<double>(), (std::vector<double>{0, 3, 3, 0}));
  EXPECT_KIRZL_ERROR(w.set_grad(zeros({3}, {.dtype = DType::f64})), ErrorCode::InvalidArgument, "does not match",
                     "another shape");
}

TEST(Autograd, GradFunctionLeavesDotGradAlone) {
  auto x = vec({1, 2, 3});
  auto y = x * x;
  auto g = autograd::grad({sum(y)}, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{2, 4, 6}));
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  auto x = vec({1.0});
  Tensor y = x;
  for (int i = 0; i < 10000; ++i) y = y * 1.0001;
  sum(y).backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 10000), 1e-9);
  // Tearing down a much longer chain must not recurse either (Note [iterative graph teardown]).
  Tensor z = x;
  for (int i = 0; i < 200000; ++i) z = z + 1.0;
  z = Tensor();
  SUCCEED();
}

TEST(Autograd, MultiplePathsRunEachNodeOnce) {
  auto x = vec({2});
  auto a = x * 3.0;
  auto b = a * a;      // uses a twice
  auto c = a + b;      // and a again
  int calls = 0;
  a.register_hook([&](const Tensor&) {
    ++calls;
    return Tensor();
  });
  sum(c).backward();  // dc/da = 1 + 2a = 13 ; dc/dx = 39
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(x.grad().item(), 39);
}

TEST(Autograd, LeafGradientsNeverAlias) {
  auto a = vec({1, 2}), b = vec({3, 4});
  sum(a + b).backward();  // the same incoming gradient reaches both leaves
  EXPECT_NE(a.grad().storage().id(), b.grad().storage().id());
  {
    NoGradGuard g;
    a.grad().add_(ones({2}, {.dtype = DType::f64}));
  }
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));
  auto user_grad = from_vector<double>({5, 6});
  auto c = vec({0, 0});
  c.backward(user_grad);
  EXPECT_NE(c.grad().storage().id(), user_grad.storage().id());
}

TEST(Autograd, QueuedCallbacksRunAfterEveryNode) {
  auto w1 = vec({2}), w2 = vec({3});
  std::vector<std::string> events;
  w1.register_post_accumulate_grad_hook([&](Tensor&) {
    events.push_back("w1");
    autograd::queue_callback([&] { events.push_back("end"); });
  });
  w2.register_post_accumulate_grad_hook([&](Tensor&) { events.push_back("w2"); });
  sum(w1 * w2).backward();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back(), "end");
  EXPECT_KIRZL_ERROR(autograd::queue_callback([] {}), ErrorCode::InvalidArgument, "no backward pass");
  // A throwing callback propagates out of backward().
  auto w3 = vec({1});
  w3.register_post_accumulate_grad_hook([](Tensor&) {
    autograd::queue_callback([] { KIRZL_FAIL(ErrorCode::Timeout, "reducer timed out"); });
  });
  EXPECT_KIRZL_ERROR(sum(w3 * 2.0).backward(), ErrorCode::Timeout, "reducer timed out");
}
