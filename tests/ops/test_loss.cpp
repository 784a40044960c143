#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

namespace {

// Independent reference: per-position losses of logits [N, C, S] (row-major) against targets
// [N, S]; ignored positions give 0 and are not counted.
struct RefLoss {
  std::vector<double> losses;
  int64_t count = 0;
};
RefLoss ref_cross_entropy(const std::vector<double>& x, const std::vector<int64_t>& t, int64_t N, int64_t C,
                          int64_t S, int64_t ignore, double eps) {
  RefLoss r;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      auto at = [&](int64_t c) { return x[(n * C + c) * S + s]; };
      int64_t tg = t[n * S + s];
      if (tg == ignore) {
        r.losses.push_back(0);
        continue;
      }
      ++r.count;
      double m = -INFINITY, z = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, at(c));
      for (int64_t c = 0; c < C; ++c) z += std::exp(at(c) - m);
      double loss = 0;
      for (int64_t c = 0; c < C; ++c) {
        double q = (c == tg ? 1 - eps : 0) + eps / C;
        loss -= q * (at(c) - m - std::log(z));
      }
      r.losses.push_back(loss);
    }
  return r;
}

double total(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

TEST(CrossEntropy, HandComputed) {
  Tensor logits = from_vector<double>({0.0, std::log(2.0)}, {1, 2});
  Tensor t1 = from_vector<int64_t>({1}, {1});
  Tensor t0 = from_vector<int64_t>({0}, {1});
  EXPECT_NEAR(cross_entropy(logits, t1).item(), std::log(1.5), 1e-15);  // -log(2/3)
  EXPECT_NEAR(cross_entropy(logits, t0).item(), std::log(3.0), 1e-15);  // -log(1/3)
  // Smoothing 0.1 over 2 classes: q = [0.05, 0.95] -> 0.05 ln 3 + 0.95 ln(3/2) = ln 3 - 0.95 ln 2.
  EXPECT_NEAR(cross_entropy(logits, t1, {.label_smoothing = 0.1}).item(), std::log(3.0) - 0.95 * std::log(2.0), 1e-15);
  // Uniform logits over 4 classes: ln 4 for any target.
  EXPECT_NEAR(cross_entropy(zeros({1, 4}, {.dtype = DType::f64}), from_vector<int64_t>({3}, {1})).item(),
              std::log(4.0), 1e-15);
}

TEST(CrossEntropy, MatchesReference2D) {
  const int64_t N = 6, C = 5;
  Tensor logits = uniform({N, C}, -3, 3, {.dtype = DType::f64}, nullptr);
  std::vector<int64_t> tv{0, 4, -100, 2, 1, 4};
  Tensor t = from_vector<int64_t>(tv, {N});
  auto xv = logits.to_vector<double>();
  for (double eps : {0.0, 0.2}) {
    SCOPED_TRACE(eps);
    RefLoss r = ref_cross_entropy(xv, tv, N, C, 1, -100, eps);
    CrossEntropyOptions o{.label_smoothing = eps};
    EXPECT_NEAR(cross_entropy(logits, t, o).item(), total(r.losses) / r.count, 1e-13);
    o.reduction = Reduction::Sum;
    EXPECT_NEAR(cross_entropy(logits, t, o).item(), total(r.losses), 1e-13);
    o.reduction = Reduction::None;
    Tensor none = cross_entropy(logits, t, o);
    EXPECT_EQ(none.shape(), Shape({N}));
    auto nv = none.to_vector<double>();
    for (int64_t i = 0; i < N; ++i) EXPECT_NEAR(nv[i], r.losses[i], 1e-13);
    EXPECT_EQ(nv[2], 0.0);  // ignored
  }
}

TEST(CrossEntropy, MatchesReferenceSpatialAndI32) {
  const int64_t N = 2, C = 3, D1 = 2, D2 = 3;
  Tensor logits = uniform({N, C, D1, D2}, -2, 2, {.dtype = DType::f64}, nullptr);
  std::vector<int64_t> tv{0, 1, 2, 2, 7, 0, 1, 1, 0, 2, 7, 1};
  Tensor t = from_vector<int64_t>(tv, {N, D1, D2}).to(DType::i32);
  RefLoss r = ref_cross_entropy(logits.to_vector<double>(), tv, N, C, D1 * D2, 7, 0.1);
  CrossEntropyOptions o{.ignore_index = 7, .label_smoothing = 0.1, .reduction = Reduction::None};
  Tensor none = cross_entropy(logits, t, o);
  EXPECT_EQ(none.shape(), Shape({N, D1, D2}));
  auto nv = none.to_vector<double>();
  for (size_t i = 0; i < nv.size(); ++i) EXPECT_NEAR(nv[i], r.losses[i], 1e-13);
  o.reduction = Reduction::Mean;
  EXPECT_NEAR(cross_entropy(logits, t, o).item(), total(r.losses) / r.count, 1e-13);
}

TEST(CrossEntropy, F32AndBf16Logits) {
  Tensor logits = uniform({16, 10}, -4, 4, {.dtype = DType::f64}, nullptr);
  Tensor t = randint(0, 10, {16});
  auto tv = t.to_vector<int64_t>();
  for (auto [dt, tol] : {std::pair{DType::f32, 1e-5}, std::pair{DType::bf16, 2e-2}}) {
    Tensor l = logits.to(dt);
    RefLoss r = ref_cross_entropy(l.to_vector<double>(), tv, 16, 10, 1, -100, 0.0);
    Tensor loss = cross_entropy(l, t);
    EXPECT_EQ(loss.dtype(), dt);
    EXPECT_NEAR(loss.item(), total(r.losses) / 16, tol);
  }
}

TEST(CrossEntropy, IgnoreIndexSemantics) {
  Tensor logits = uniform({3, 4}, -1, 1, {.dtype = DType::f64}, nullptr).requires_grad_();
  // ignore_index inside [0, C): rows with that class are skipped and not counted.
  Tensor t = from_vector<int64_t>({0, 2, 0}, {3});
  RefLoss r = ref_cross_entropy(logits.to_vector<double>(), {0, 2, 0}, 3, 4, 1, 0, 0.0);
  ASSERT_EQ(r.count, 1);
  Tensor loss = cross_entropy(logits, t, {.ignore_index = 0});
  EXPECT_NEAR(loss.item(), r.losses[1], 1e-14);
  loss.backward();
  auto g = logits.grad().to_vector<double>();
  for (int64_t c = 0; c < 4; ++c) {
    EXPECT_EQ(g[c], 0.0);      // row 0 ignored
    EXPECT_EQ(g[8 + c], 0.0);  // row 2 ignored
  }
  // Ignored targets may lie outside [0, C) (the default -100).
  EXPECT_NO_THROW(cross_entropy(logits.detach(), from_vector<int64_t>({-100, 1, 3}, {3})));
}

TEST(CrossEntropy, AllIgnoredMeanIsNaN) {
  // Documented PyTorch behaviour: the mean over zero counted targets is 0/0 = NaN; gradient zero.
  Tensor logits = uniform({2, 3}, -1, 1, {.dtype = DType::f64}, nullptr).requires_grad_();
  Tensor t = from_vector<int64_t>({-100, -100}, {2});
  Tensor loss = cross_entropy(logits, t);
  EXPECT_TRUE(std::isnan(loss.item()));
  loss.backward();
  for (double v : logits.grad().to_vector<double>()) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(cross_entropy(logits, t, {.reduction = Reduction::Sum}).item(), 0.0);
}

TEST(CrossEntropy, Gradcheck) {
  Tensor x = rand_input({5, 4}, 3, -2, 2);
  Tensor t = from_vector<int64_t>({1, -100, 3, 0, 3}, {5});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t); }, {x});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, {.label_smoothing = 0.3}); }, {x});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], t, {.label_smoothing = 0.1, .reduction = Reduction::Sum});
      },
      {x});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, {.reduction = Reduction::None}); },
                   {x});
  Tensor x4 = rand_input({2, 3, 2, 2}, 4, -2, 2);
  Tensor t4 = from_vector<int64_t>({0, 2, 1, 5, 2, 2, 5, 0}, {2, 2, 2}).to(DType::i32);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], t4, {.ignore_index = 5, .label_smoothing = 0.2, .reduction = Reduction::None});
      },
      {x4});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t4, {.ignore_index = 5, .label_smoothing = 0.2}); },
      {x4});
  // Non-contiguous logits.
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0].t(), from_vector<int64_t>({0, 1, 4, 2})); },
                   {rand_input({5, 4}, 5)});
}

TEST(CrossEntropy, BadInput) {
  Tensor logits = zeros({3, 5});
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 5, 1}, {3})); }, ErrorCode::InvalidArgument,
               {"cross_entropy", "target 5", "position [1]", "5 classes", "ignore_index -100"});
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 1, -1}, {3})); }, ErrorCode::InvalidArgument,
               {"target -1", "position [2]"});
  expect_error([&] { cross_entropy(zeros({2, 3, 2}), from_vector<int32_t>({0, 1, 2, 3}, {2, 2})); },
               ErrorCode::InvalidArgument, {"target 3", "position [1, 1]", "3 classes"});
  expect_error([&] { cross_entropy(logits, zeros({3})); }, ErrorCode::InvalidArgument, {"cross_entropy", "i32 or i64", "f32[3]"});
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 1}, {2})); }, ErrorCode::InvalidArgument,
               {"cross_entropy", "i64[2]", "f32[3, 5]", "[3]"});
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 1, 2}, {3}), {.label_smoothing = 1.5}); },
               ErrorCode::InvalidArgument, {"label_smoothing", "1.5"});
  expect_error([&] { cross_entropy(zeros({3, 5}, {.dtype = DType::i64}), from_vector<int64_t>({0, 1, 2}, {3})); },
               ErrorCode::InvalidArgument, {"cross_entropy", "logits", "floating"});
}

TEST(MseLoss, MatchesReference) {
  Tensor a = uniform({3, 4}, -2, 2, {.dtype = DType::f64}, nullptr);
  Tensor b = uniform({3, 4}, -2, 2, {.dtype = DType::f64}, nullptr);
  auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += (av[i] - bv[i]) * (av[i] - bv[i]);
  EXPECT_NEAR(mse_loss(a, b).item(), s / 12, 1e-14);
  EXPECT_NEAR(mse_loss(a, b, Reduction::Sum).item(), s, 1e-13);
  Tensor none = mse_loss(a, b, Reduction::None);
  EXPECT_EQ(none.shape(), Shape({3, 4}));
  EXPECT_NEAR(none.to_vector<double>()[5], (av[5] - bv[5]) * (av[5] - bv[5]), 1e-15);
  // Hand-computed with broadcasting: ([1, 2] - 0)^2 mean = 2.5.
  EXPECT_DOUBLE_EQ(mse_loss(from_vector<double>({1, 2}), zeros({}, {.dtype = DType::f64})).item(), 2.5);
}

TEST(MseLoss, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); },
                   {rand_input({3, 4}, 6), rand_input({3, 4}, 7)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], Reduction::None); },
                   {rand_input({3, 4}, 8), rand_input({4}, 9)});
}

TEST(MseLoss, BadInput) {
  expect_error([] { mse_loss(zeros({3}), zeros({4})); }, ErrorCode::InvalidArgument, {"broadcast", "[3]", "[4]"});
}
