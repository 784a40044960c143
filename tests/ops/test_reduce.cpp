// Reductions: sum, mean, var, max/min, argmax/argmin, sum_to — values, gradients, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor m23() { return from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}); }

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void expect_near(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), expected.size()) << t.describe();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol * (1 + std::abs(expected[i]))) << "element " << i;
}

// Plain reference: sums x [outer, n, inner] (row-major values) over n.
std::vector<double> ref_sum(const std::vector<double>& x, int64_t outer, int64_t n, int64_t inner) {
  std::vector<double> out(outer * inner, 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < inner; ++j) out[o * inner + j] += x[(o * n + k) * inner + j];
  return out;
}

}  // namespace

TEST(Sum, Values) {
  Tensor x = m23();
  EXPECT_EQ(sum(x).item(), 21);
  EXPECT_EQ(sum(x).dim(), 0);
  EXPECT_EQ(values(sum(x, {0})), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(values(sum(x, {1})), (std::vector<double>{6, 15}));
  EXPECT_EQ(values(sum(x, {-1})), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum(x, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(x, {0, 1}, true).shape(), (Shape{1, 1}));
  EXPECT_EQ(values(sum(x.t(), {1})), (std::vector<double>{5, 7, 9}));  // non-contiguous input
  EXPECT_EQ(sum(scalar_tensor(4.0)).item(), 4);
}

TEST(Sum, IntegersSumInI64) {
  Tensor x = from_vector<int32_t>({2000000000, 2000000000});
  Tensor s = sum(x);
  EXPECT_EQ(s.dtype(), DType::i64);
  EXPECT_EQ(s.item<int64_t>(), 4000000000LL);
  EXPECT_EQ(sum(from_vector<uint8_t>({200, 100})).item<int64_t>(), 300);
}

TEST(Sum, EmptyIsZero) {
  EXPECT_EQ(sum(zeros({0})).item(), 0.0);
  Tensor s = sum(zeros({3, 0}), {1});
  EXPECT_EQ(values(s), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(sum(zeros({0, 3}), {1}).shape(), (Shape{0}));
}

TEST(Sum, LayoutsMatchReference) {
  // Shapes covering the contiguous fast paths (long rows, wide column blocks) and the general one.
  Generator gen(3);
  Tensor x = uniform({3, 70001}, -1, 1, {.dtype = DType::f32}, &gen);
  std::vector<double> xv = values(x);
  expect_near(sum(x, {1}), ref_sum(xv, 3, 70001, 1), 1e-5);
  expect_near(sum(x.reshape({-1})), ref_sum(xv, 1, 3 * 70001, 1), 1e-5);
  Tensor y = uniform({5, 7, 301}, -1, 1, {.dtype = DType::f64}, &gen);
  std::vector<double> yv = values(y);
  expect_near(sum(y, {1}), ref_sum(yv, 5, 7, 301));
  expect_near(sum(y, {0}), ref_sum(yv, 1, 5, 7 * 301));
  expect_near(sum(y, {0, 1}), ref_sum(yv, 1, 35, 301));
  expect_near(sum(y, {1, 2}), ref_sum(yv, 5, 7 * 301, 1));
  // Reduced dims 0 and 2 are not adjacent: the general path. Sum over 2 first, then 0.
  std::vector<double> r02 = ref_sum(ref_sum(yv, 35, 301, 1), 1, 5, 7);
  expect_near(sum(y, {0, 2}), r02);
  expect_near(sum(y.transpose(0, 2), {2, 0}), r02);
}

TEST(Sum, DeterministicAcrossThreadCounts) {
  Tensor x = uniform({1 << 18}, -1, 1, {.dtype = DType::f32});
  set_num_threads(1);
  double one = sum(x).item();
  set_num_threads(2);
  double two = sum(x).item();
  EXPECT_EQ(one, two);
}

TEST(Sum, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0], {1}); }, {rand_input({2, 3, 4}, 1)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0].transpose(0, 2), {0, 2}, true); },
                   {rand_input({2, 3, 4}, 2)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0]); }, {rand_input({3, 4}, 3)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1}); }, {rand_input({2, 3, 4}, 4)});
}

TEST(Mean, ValuesAndGradient) {
  Tensor x = m23();
  EXPECT_EQ(mean(x).item(), 3.5);
  EXPECT_EQ(values(mean(x, {1})), (std::vector<double>{2, 5}));
  EXPECT_EQ(values(mean(x, {0}, true)), (std::vector<double>{2.5, 3.5, 4.5}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return mean(in[0].t(), {0}); }, {rand_input({3, 4}, 5)});
}

TEST(Var, Values) {
  Tensor x = m23();
  // Deviations from 3.5 squared sum to 17.5.
  EXPECT_DOUBLE_EQ(var(x).item(), 3.5);
  EXPECT_DOUBLE_EQ(var(x, {}, 0).item(), 17.5 / 6);
  EXPECT_EQ(values(var(x, {1})), (std::vector<double>{1, 1}));
  EXPECT_EQ(values(var(x, {0}, 0)), (std::vector<double>{2.25, 2.25, 2.25}));
  EXPECT_EQ(var(x, {1}, 1, true).shape(), (Shape{2, 1}));
  // Large offset: the two-pass formula keeps precision.
  Tensor big = from_vector<float>({1e6f + 1, 1e6f + 2, 1e6f + 3});
  EXPECT_NEAR(var(big).item(), 1.0, 1e-6);
  // One element with correction 1: 0/0, NaN as in PyTorch.
  EXPECT_TRUE(std::isnan(var(from_vector<double>({5})).item()));
}

TEST(Var, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0], {1}); }, {rand_input({3, 5}, 6)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0].transpose(0, 1), {0, 2}, 0, true); },
                   {rand_input({3, 2, 4}, 7)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return var(in[0]); }, {rand_input({4, 3}, 8)});
}

TEST(MaxMin, AllValues) {
  Tensor x = from_vector<double>({3, -7, 9, 0}, {2, 2});
  EXPECT_EQ(max(x).item(), 9);
  EXPECT_EQ(min(x).item(), -7);
  EXPECT_EQ(max(x).dim(), 0);
  EXPECT_EQ(max(x.t()).item(), 9);
  EXPECT_EQ(max(scalar_tensor(2.5)).item(), 2.5);
  Tensor i = from_vector<int64_t>({5, -3, 12});
  EXPECT_EQ(max(i).dtype(), DType::i64);
  EXPECT_EQ(max(i).item<int64_t>(), 12);
  EXPECT_EQ(min(i).item<int64_t>(), -3);
  EXPECT_EQ(max(from_vector<float>({1, 4, 2}).to(DType::bf16)).item(), 4);
  // Long contiguous row (lanes + tail) with the extremum at the very end.
  Tensor r = arange(0, 1003, 1, {.dtype = DType::f32});
  EXPECT_EQ(max(r).item(), 1002);
  EXPECT_EQ(min(neg(r)).item(), -1002);
}

TEST(MaxMin, AlongDim) {
  Tensor x = from_vector<double>({3, 7, 7, -1, -5, -1}, {2, 3});
  EXPECT_EQ(values(max(x, 1)), (std::vector<double>{7, -1}));
  EXPECT_EQ(values(min(x, 1)), (std::vector<double>{3, -5}));
  EXPECT_EQ(values(max(x, 0)), (std::vector<double>{3, 7, 7}));
  EXPECT_EQ(values(min(x, -2)), (std::vector<double>{-1, -5, -1}));
  EXPECT_EQ(max(x, 1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(max(x, 0).shape(), (Shape{3}));
  EXPECT_EQ(values(max(x.t(), 0)), (std::vector<double>{7, -1}));
  EXPECT_EQ(max(scalar_tensor(1.5), 0).dim(), 0);
  EXPECT_EQ(max(scalar_tensor(1.5), 0, true).dim(), 0);
}

TEST(MaxMin, ArgFirstOccurrence) {
  Tensor x = from_vector<double>({3, 7, 7, -1, -5, -1}, {2, 3});
  Tensor a = argmax(x, 1);
  EXPECT_EQ(a.dtype(), DType::i64);
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(argmin(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(argmin(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(argmax(x, 1, true).shape(), (Shape{2, 1}));
  Tensor ties = from_vector<int32_t>({4, 9, 9, 2, 9});
  EXPECT_EQ(argmax(ties, 0).item<int64_t>(), 1);
  EXPECT_EQ(argmin(from_vector<float>({2, 1, 1, 1}), 0).item<int64_t>(), 1);
}

TEST(MaxMin, WideColumnsMatchReference) {
  // Reducing a middle dim with more than one block of columns.
  Generator gen(9);
  Tensor x = randint(-50, 50, {2, 9, 300}, {.dtype = DType::i64}, &gen).to(DType::f32);
  std::vector<double> xv = values(x);
  std::vector<double> mx = values(max(x, 1)), mn = values(min(x, 1));
  std::vector<int64_t> am = argmax(x, 1).to_vector<int64_t>(), an = argmin(x, 1).to_vector<int64_t>();
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t j = 0; j < 300; ++j) {
      double best = xv[o * 2700 + j], worst = best;
      int64_t bi = 0, wi = 0;
      for (int64_t k = 1; k < 9; ++k) {
        double v = xv[(o * 9 + k) * 300 + j];
        if (v > best) best = v, bi = k;
        if (v < worst) worst = v, wi = k;
      }
      ASSERT_EQ(mx[o * 300 + j], best);
      ASSERT_EQ(mn[o * 300 + j], worst);
      ASSERT_EQ(am[o * 300 + j], bi);
      ASSERT_EQ(an[o * 300 + j], wi);
    }
}

TEST(MaxMin, NanPropagates) {
  Tensor row = from_vector<double>({1, kNaN, 3, 10, 2, 2, 2, 2, 2, 2});
  EXPECT_TRUE(std::isnan(max(row).item()));
  EXPECT_TRUE(std::isnan(min(row).item()));
  EXPECT_TRUE(std::isnan(max(row, 0).item()));
  EXPECT_EQ(argmax(row, 0).item<int64_t>(), 1);
  EXPECT_EQ(argmin(row, 0).item<int64_t>(), 1);
  // Column path: NaN in the middle and last rows.
  Tensor cols = from_vector<double>({1, 2, kNaN, 0, 5, kNaN}, {3, 2});
  std::vector<double> m = values(max(cols, 0));
  EXPECT_TRUE(std::isnan(m[0]) && std::isnan(m[1]));
  EXPECT_EQ(argmax(cols, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmin(cols, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
}

TEST(MaxMin, GradientGoesToFirstExtremum) {
  Tensor x = from_vector<double>({3, 7, 7, -1, -5, -1}, {2, 3}).requires_grad_();
  sum(max(x, 1)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 0, 1, 0, 0}));
  Tensor y = from_vector<double>({2, 0, 0, 2}).requires_grad_();
  min(y).backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0, 1, 0, 0}));
}

TEST(MaxMin, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0], 1); }, {rand_input({3, 4, 2}, 10)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return min(in[0], 0, true); }, {rand_input({3, 4, 2}, 11)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0].transpose(0, 2), -1); }, {rand_input({3, 4, 2}, 12)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return min(in[0].slice(1, 0, 4, 2), 1); }, {rand_input({3, 4}, 13)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0]); }, {rand_input({3, 4}, 14)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return min(in[0].t()); }, {rand_input({3, 4}, 15)});
}

TEST(ReduceErrors, DimOutOfRange) {
  Tensor x = zeros({2, 3});
  EXPECT_KIRZL_ERROR(sum(x, {2}), ErrorCode::InvalidArgument, "sum", "dimension 2", "[2, 3]");
  EXPECT_KIRZL_ERROR(mean(x, {-3}), ErrorCode::InvalidArgument, "mean", "-3");
  EXPECT_KIRZL_ERROR(var(x, {5}), ErrorCode::InvalidArgument, "var", "5");
  EXPECT_KIRZL_ERROR(max(x, 2), ErrorCode::InvalidArgument, "max", "dimension 2", "[2, 3]");
  EXPECT_KIRZL_ERROR(min(x, -3), ErrorCode::InvalidArgument, "min", "-3");
  EXPECT_KIRZL_ERROR(argmax(x, 7), ErrorCode::InvalidArgument, "argmax", "7");
  EXPECT_KIRZL_ERROR(argmin(x, 2), ErrorCode::InvalidArgument, "argmin", "2");
  EXPECT_KIRZL_ERROR(sum(x, {1, -1}), ErrorCode::InvalidArgument, "sum", "twice");
}

TEST(ReduceErrors, EmptyExtremum) {
  EXPECT_KIRZL_ERROR(max(zeros({0})), ErrorCode::InvalidArgument, "max", "empty", "[0]");
  EXPECT_KIRZL_ERROR(min(zeros({2, 0})), ErrorCode::InvalidArgument, "min", "empty");
  EXPECT_KIRZL_ERROR(max(zeros({2, 0}), 1), ErrorCode::InvalidArgument, "max", "size 0");
  EXPECT_KIRZL_ERROR(argmin(zeros({0, 3}), 0), ErrorCode::InvalidArgument, "argmin", "size 0");
  // Reducing a non-empty dim of a tensor with another empty dim is fine.
  EXPECT_EQ(max(zeros({0, 3}), 1).shape(), (Shape{0}));
}

TEST(ReduceErrors, Dtypes) {
  Tensor i = from_vector<int64_t>({1, 2});
  EXPECT_KIRZL_ERROR(mean(i), ErrorCode::InvalidArgument, "mean", "floating", "i64");
  EXPECT_KIRZL_ERROR(var(i), ErrorCode::InvalidArgument, "var", "floating");
  EXPECT_KIRZL_ERROR(var(zeros({3}), {}, -1), ErrorCode::InvalidArgument, "var", "correction");
  EXPECT_KIRZL_ERROR(sum_to(zeros({2, 3}), {4}), ErrorCode::InvalidArgument, "sum_to", "[4]");
}
