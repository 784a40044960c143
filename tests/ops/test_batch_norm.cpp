#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;
using kirzl::testing::randn_t;

namespace {


struct Stats {
  std::vector<double> mean, biased_var, unbiased_var;
};

// Per-channel statistics of x [N, C, ...] with plain loops in double.
Stats ref_stats(const Tensor& xt) {
  const int64_t N = xt.size(0), C = xt.size(1), S = xt.numel() / (N * C);
  std::vector<double> x = xt.to_vector<double>();
  Stats st;
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) s += x[(n * C + c) * S + i];
    const double m = s / double(N * S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) q += (x[(n * C + c) * S + i] - m) * (x[(n * C + c) * S + i] - m);
    st.mean.push_back(m);
    st.biased_var.push_back(q / double(N * S));
    st.unbiased_var.push_back(q / double(N * S - 1));
  }
  return st;
}

std::vector<double> ref_normalize(const Tensor& xt, const std::vector<double>& mean, const std::vector<double>& var,
                                  const std::vector<double>& w, const std::vector<double>& b, double eps) {
  const int64_t N = xt.size(0), C = xt.size(1), S = xt.numel() / (N * C);
  std::vector<double> x = xt.to_vector<double>(), y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (n * C + c) * S + i;
        y[k] = (x[k] - mean[c]) / std::sqrt(var[c] + eps) * w[c] + b[c];
      }
  return y;
}

void expect_close(const std::vector<double>& g, const std::vector<double>& want, double tol) {
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], tol * (1 + std::abs(want[i]))) << "element " << i;
}

}  // namespace

TEST(BatchNorm, HandComputed) {
  Tensor x = from_vector<double>({1, 3}, {2, 1});
  Tensor rm = zeros({1}, {.dtype = DType::f64}), rv = ones({1}, {.dtype = DType::f64});
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.1, 0.0);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-1, 1}));  // mean 2, biased var 1
  EXPECT_DOUBLE_EQ(rm.item(), 0.2);                                 // 0.9 * 0 + 0.1 * 2
  EXPECT_DOUBLE_EQ(rv.item(), 1.1);                                 // 0.9 * 1 + 0.1 * 2 (unbiased)
  Tensor ye = batch_norm(x, rm, rv, full({1}, 2.0, {.dtype = DType::f64}), ones({1}, {.dtype = DType::f64}), false, 0.1, 0.0);
  expect_close(ye.to_vector<double>(), {(1 - 0.2) / std::sqrt(1.1) * 2 + 1, (3 - 0.2) / std::sqrt(1.1) * 2 + 1}, 1e-14);
}

TEST(BatchNorm, TrainingMatchesReferenceAndUpdatesRunningStats) {
  for (Shape shape : {Shape{4, 3, 5, 6}, Shape{7, 5}, Shape{2, 3, 4}}) {
    const int64_t C = shape[1];
    Tensor x = add(mul(randn_t(shape, 1), 3.0), 2.0);
    Tensor w = randn_t({C}, 2), b = randn_t({C}, 3);
    Tensor rm = randn_t({C}, 4), rv = add(rand({C}, {.dtype = DType::f64}), 0.5);
    std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
    Stats st = ref_stats(x);
    Tensor y = batch_norm(x, rm, rv, w, b, true, 0.25, 1e-5);
    expect_close(y.to_vector<double>(),
                 ref_normalize(x, st.mean, st.biased_var, w.to_vector<double>(), b.to_vector<double>(), 1e-5), 1e-12);
    std::vector<double> rm_want, rv_want;
    for (int64_t c = 0; c < C; ++c) {
      rm_want.push_back(0.75 * rm0[c] + 0.25 * st.mean[c]);
      rv_want.push_back(0.75 * rv0[c] + 0.25 * st.unbiased_var[c]);
    }
    expect_close(rm.to_vector<double>(), rm_want, 1e-12);
    expect_close(rv.to_vector<double>(), rv_want, 1e-12);
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  Tensor x = randn_t({3, 4, 2, 2}, 5);
  Tensor rm = randn_t({4}, 6), rv = add(rand({4}, {.dtype = DType::f64}), 0.5);
  std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), false, 0.1, 1e-3);
  expect_close(y.to_vector<double>(), ref_normalize(x, rm0, rv0, std::vector<double>(4, 1.0), std::vector<double>(4, 0.0), 1e-3),
               1e-12);
  EXPECT_EQ(rm.to_vector<double>(), rm0);  // untouched in eval
  EXPECT_EQ(rv.to_vector<double>(), rv0);
}

TEST(BatchNorm, LowPrecisionInputWithF32Stats) {
  Tensor x = randn_t({8, 3, 4, 4}, 7, DType::f32).to(DType::bf16);
  Tensor rm = zeros({3}), rv = ones({3});
  Tensor w = ones({3}), b = zeros({3});
  Tensor y = batch_norm(x, rm, rv, w, b, true);
  EXPECT_EQ(y.dtype(), DType::bf16);
  Stats st = ref_stats(x);
  expect_close(y.to_vector<double>(), ref_normalize(x, st.mean, st.biased_var, {1, 1, 1}, {0, 0, 0}, 1e-5), 1e-2);
  expect_close(rm.to_vector<double>(), {0.1 * st.mean[0], 0.1 * st.mean[1], 0.1 * st.mean[2]}, 1e-5);
}

TEST(BatchNorm, Gradients) {
  using V = std::vector<Tensor>;
  // Training: statistics depend on x.
  EXPECT_GRADCHECK([](const V& in) { return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true, 0.1, 1e-5); },
                   {rand_input({3, 2, 4, 3}, 1), rand_input({2}, 2), rand_input({2}, 3)});
  EXPECT_GRADCHECK([](const V& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                   {rand_input({5, 3}, 4)});
  // Non-contiguous input; running stats present (updated, but the output does not depend on them).
  Tensor rm = zeros({3}, {.dtype = DType::f64}), rv = ones({3}, {.dtype = DType::f64});
  auto with_running = [rm, rv](const V& in) { return batch_norm(in[0].transpose(0, 1), rm, rv, in[1], in[2], true); };
  EXPECT_GRADCHECK(with_running, {rand_input({3, 4, 5}, 5), rand_input({3}, 6), rand_input({3}, 7)});
  // Eval: fixed running statistics.
  Tensor erm = from_vector<double>({0.1, -0.3}), erv = from_vector<double>({0.5, 2.0});
  auto eval = [erm, erv](const V& in) { return batch_norm(in[0], erm, erv, in[1], in[2], false, 0.1, 1e-5); };
  EXPECT_GRADCHECK(eval, {rand_input({3, 2, 2, 3}, 8), rand_input({2}, 9), rand_input({2}, 10)});
}

TEST(BatchNorm, BadInputs) {
  Tensor x = zeros({4, 3, 2, 2});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), ones({4}), Tensor(), true); }, ErrorCode::InvalidArgument,
               {"batch_norm", "weight", "[3]", "f32[4]", "f32[4, 3, 2, 2]"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); }, ErrorCode::InvalidArgument,
               {"batch_norm", "eval", "running_mean"});
  expect_error([&] { batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               ErrorCode::InvalidArgument, {"batch_norm", "more than 1 value per channel", "f32[1, 3]"});
  expect_error([&] { batch_norm(zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true); }, ErrorCode::InvalidArgument,
               {"batch_norm", "[N, C, ...]"});
  expect_error([&] { batch_norm(zeros({4, 3}, {.dtype = DType::i32}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               ErrorCode::InvalidArgument, {"batch_norm", "floating"});
}
