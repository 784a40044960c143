#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

namespace {

// Independent reference over rows of n trailing elements; w/b empty means no affine.
std::vector<double> ref_layer_norm(const std::vector<double>& x, int64_t n, const std::vector<double>& w,
                                   const std::vector<double>& b, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / n; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < n; ++j) mu += x[r * n + j];
    mu /= n;
    for (int64_t j = 0; j < n; ++j) var += (x[r * n + j] - mu) * (x[r * n + j] - mu);
    var /= n;
    for (int64_t j = 0; j < n; ++j) {
      double v = (x[r * n + j] - mu) / std::sqrt(var + eps);
      y[r * n + j] = (w.empty() ? v : v * w[j]) + (b.empty() ? 0 : b[j]);
    }
  }
  return y;
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

}  // namespace

TEST(LayerNorm, HandComputed) {
  // [1, 3]: mean 2, var 1 -> [-1, 1] / sqrt(1 + eps).
  Tensor x = from_vector<double>({1.0, 3.0}, {1, 2});
  double s = 1 / std::sqrt(1 + 1e-5);
  expect_near(layer_norm(x, {2}).to_vector<double>(), {-s, s}, 1e-15);
  Tensor w = from_vector<double>({2.0, 3.0}), b = from_vector<double>({0.5, -0.5});
  expect_near(layer_norm(x, {2}, w, b, 0.0).to_vector<double>(), {-1.5, 2.5}, 1e-15);
}

TEST(LayerNorm, MatchesReference) {
  Tensor x = uniform({4, 3, 5}, -3, 3, {.dtype = DType::f64}, nullptr);
  Tensor w = uniform({3, 5}, 0.5, 1.5, {.dtype = DType::f64}, nullptr);
  Tensor b = uniform({3, 5}, -1, 1, {.dtype = DType::f64}, nullptr);
  auto xv = x.to_vector<double>();
  expect_near(layer_norm(x, {5}).to_vector<double>(), ref_layer_norm(xv, 5, {}, {}, 1e-5), 1e-13);
  expect_near(layer_norm(x, {3, 5}, w, b, 1e-3).to_vector<double>(),
              ref_layer_norm(xv, 15, w.to_vector<double>(), b.to_vector<double>(), 1e-3), 1e-13);
  expect_near(layer_norm(x, {3, 5}, w, Tensor()).to_vector<double>(),
              ref_layer_norm(xv, 15, w.to_vector<double>(), {}, 1e-5), 1e-13);
}

TEST(LayerNorm, LowPrecisionAndNonContiguous) {
  Tensor x = uniform({8, 96}, -2, 2, {.dtype = DType::f64}, nullptr);
  for (auto [dt, tol] : {std::pair{DType::f32, 1e-5}, std::pair{DType::bf16, 3e-2}, std::pair{DType::f16, 5e-3}}) {
    Tensor xl = x.to(dt);
    Tensor y = layer_norm(xl, {96});
    EXPECT_EQ(y.dtype(), dt);
    expect_near(y.to_vector<double>(), ref_layer_norm(xl.to_vector<double>(), 96, {}, {}, 1e-5), tol);
  }
  Tensor xt = uniform({6, 4}, -2, 2, {.dtype = DType::f64}, nullptr).t();  // [4, 6], strided
  expect_near(layer_norm(xt, {6}).to_vector<double>(), ref_layer_norm(xt.contiguous().to_vector<double>(), 6, {}, {}, 1e-5),
              1e-13);
}

TEST(LayerNorm, LargeOffsetIsStable) {
  // Two-pass statistics: a large common offset must not destroy the variance.
  Tensor x = add(uniform({4, 256}, -1, 1, {}, nullptr), 1e4);
  Tensor y = layer_norm(x, {256});
  Tensor m = mean(y, {1});
  for (double v : m.to_vector<double>()) EXPECT_NEAR(v, 0.0, 1e-3);
  Tensor v = mean(mul(y, y), {1});
  for (double s : v.to_vector<double>()) EXPECT_NEAR(s, 1.0, 2e-2);
}

TEST(LayerNorm, Gradcheck) {
  Tensor x = rand_input({3, 4}, 1, -2, 2);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
                   {x, rand_input({4}, 2, 0.5, 1.5), rand_input({4}, 3)});
  Tensor x3 = rand_input({2, 3, 4}, 4, -2, 2);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], {3, 4}, in[1], Tensor()); },
                   {x3, rand_input({3, 4}, 5, 0.5, 1.5)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], {2}, Tensor(), in[1]); },
                   {x3.detach().transpose(0, 2).contiguous().reshape({4, 3, 2}).requires_grad_(), rand_input({2}, 6)});
  // Only weight/bias require grad; x does not.
  Tensor xc = x.detach();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return layer_norm(xc, {4}, in[0], in[1]); },
                   {rand_input({4}, 7), rand_input({4}, 8)});
  // Many rows: exercises the blocked, parallel weight/bias sums.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], {70}, in[1], in[2]); },
                   {rand_input({3, 70}, 9), rand_input({70}, 10), rand_input({70}, 11)});
}

TEST(LayerNorm, WeightGradMatchesReferenceAtScale) {
  // 600 rows x 130 cols: the column-blocked reduction against a plain double loop.
  Tensor x = uniform({600, 130}, -1, 1, {.dtype = DType::f64}, nullptr);
  Tensor w = ones({130}, {.dtype = DType::f64, .requires_grad = true});
  Tensor b = zeros({130}, {.dtype = DType::f64, .requires_grad = true});
  Tensor g = uniform({600, 130}, -1, 1, {.dtype = DType::f64}, nullptr);
  layer_norm(x, {130}, w, b).backward(g);
  auto xhat = ref_layer_norm(x.to_vector<double>(), 130, {}, {}, 1e-5);
  auto gv = g.to_vector<double>();
  std::vector<double> gw(130, 0), gb(130, 0);
  for (int64_t r = 0; r < 600; ++r)
    for (int64_t j = 0; j < 130; ++j) {
      gw[j] += gv[r * 130 + j] * xhat[r * 130 + j];
      gb[j] += gv[r * 130 + j];
    }
  expect_near(w.grad().to_vector<double>(), gw, 1e-10);
  expect_near(b.grad().to_vector<double>(), gb, 1e-10);
}

TEST(LayerNorm, BadInput) {
  Tensor x = zeros({2, 3});
  expect_error([&] { layer_norm(x, {4}); }, ErrorCode::InvalidArgument, {"layer_norm", "[4]", "trailing", "f32[2, 3]"});
  expect_error([&] { layer_norm(x, {}); }, ErrorCode::InvalidArgument, {"layer_norm", "non-empty"});
  expect_error([&] { layer_norm(x, {3}, zeros({2})); }, ErrorCode::InvalidArgument, {"weight", "f32[2]", "[3]"});
  expect_error([&] { layer_norm(x, {3}, Tensor(), zeros({3}, {.dtype = DType::f64})); }, ErrorCode::InvalidArgument,
               {"bias", "f64[3]", "dtype"});
}
