#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;

namespace {

// Independent reference: softmax of a contiguous row-major f64 array along `dim`.
std::vector<double> ref_softmax(const std::vector<double>& x, const Shape& shape, int64_t dim, bool log) {
  int64_t outer = 1, len = shape[dim], inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t l) { return (o * len + l) * inner + i; };
      double m = -INFINITY, s = 0;
      for (int64_t l = 0; l < len; ++l) m = std::max(m, x[at(l)]);
      for (int64_t l = 0; l < len; ++l) s += std::exp(x[at(l)] - m);
      for (int64_t l = 0; l < len; ++l) y[at(l)] = log ? x[at(l)] - m - std::log(s) : std::exp(x[at(l)] - m) / s;
    }
  return y;
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

}  // namespace

TEST(Softmax, HandComputed) {
  Tensor x = from_vector<double>({0.0, std::log(2.0)});
  expect_near(softmax(x).to_vector<double>(), {1.0 / 3, 2.0 / 3}, 1e-15);
  expect_near(log_softmax(x).to_vector<double>(), {std::log(1.0 / 3), std::log(2.0 / 3)}, 1e-15);
  // Shift invariance and no overflow for large logits.
  Tensor big = from_vector<double>({1000.0, 1000.0 + std::log(2.0)});
  expect_near(softmax(big).to_vector<double>(), {1.0 / 3, 2.0 / 3}, 1e-12);
  Tensor fbig = from_vector<float>({1e4f, 1e4f});
  expect_near(softmax(fbig).to_vector<double>(), {0.5, 0.5}, 1e-7);
}

TEST(Softmax, MatchesReferenceAlongEveryDim) {
  Shape shape{3, 4, 5};
  Tensor x = uniform(shape, -3, 3, {.dtype = DType::f64}, nullptr);
  auto xv = x.to_vector<double>();
  for (int64_t dim = 0; dim < 3; ++dim)
    for (bool log : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + (log ? " log" : ""));
      Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
      expect_near(y.to_vector<double>(), ref_softmax(xv, shape, dim, log), 1e-13);
      Tensor yn = log ? log_softmax(x, dim - 3) : softmax(x, dim - 3);  // negative dim
      expect_near(yn.to_vector<double>(), ref_softmax(xv, shape, dim, log), 1e-13);
    }
}

TEST(Softmax, NonContiguousInput) {
  Tensor base = uniform({5, 7}, -2, 2, {.dtype = DType::f64}, nullptr);
  Tensor xt = base.transpose(0, 1);  // [7, 5], strided
  auto ref = ref_softmax(xt.contiguous().to_vector<double>(), xt.shape(), 1, false);
  expect_near(softmax(xt, 1).to_vector<double>(), ref, 1e-13);
}

TEST(Softmax, LowPrecisionDtypes) {
  Shape shape{4, 33};
  Tensor x = uniform(shape, -4, 4, {.dtype = DType::f64}, nullptr);
  for (auto [dt, tol] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}, std::pair{DType::f16, 2e-3}}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor xl = x.to(dt);
    auto xv = xl.to_vector<double>();  // the rounded inputs
    Tensor y = softmax(xl, -1);
    EXPECT_EQ(y.dtype(), dt);
    expect_near(y.to_vector<double>(), ref_softmax(xv, shape, 1, false), tol);
    expect_near(log_softmax(xl, 0).to_vector<double>(), ref_softmax(xv, shape, 0, true), tol * 4);
  }
}

TEST(Softmax, RowsSumToOneAtScale) {
  Tensor x = randn({64, 2000});
  Tensor s = sum(softmax(x, 1), {1});
  for (double v : s.to_vector<double>()) EXPECT_NEAR(v, 1.0, 1e-5);
}

TEST(Softmax, MaskedEntriesGetZero) {
  Tensor x = from_vector<double>({1.0, -INFINITY, 2.0});
  auto y = softmax(x).to_vector<double>();
  EXPECT_EQ(y[1], 0.0);
  EXPECT_NEAR(y[0] + y[2], 1.0, 1e-15);
}

TEST(Softmax, Gradcheck) {
  Tensor x = rand_input({3, 4}, 1, -2, 2);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0], 0); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); }, {x});
  Tensor x3 = rand_input({2, 3, 4}, 2, -2, 2);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {x3});
  // A non-contiguous input (transposed view) to the op.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0].transpose(0, 1), 1); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0].transpose(0, 2), 0); }, {x3});
}

TEST(Softmax, BadInput) {
  using kirzl::testing::expect_error;
  Tensor x = zeros({2, 3});
  expect_error([&] { softmax(x, 2); }, ErrorCode::InvalidArgument, {"softmax", "dimension 2", "out of range", "f32[2, 3]"});
  expect_error([&] { log_softmax(x, -3); }, ErrorCode::InvalidArgument, {"log_softmax", "out of range"});
  expect_error([&] { softmax(zeros({2}, {.dtype = DType::i64})); }, ErrorCode::InvalidArgument, {"softmax", "floating", "i64"});
  expect_error([&] { softmax(Tensor()); }, ErrorCode::InvalidArgument, {"softmax", "undefined"});
}
