#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>
#include <limits>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

namespace {

Pool2dOptions popts(std::array<int64_t, 2> k, std::array<int64_t, 2> s = {0, 0}, std::array<int64_t, 2> p = {0, 0},
                    bool include_pad = true) {
  Pool2dOptions o;
  o.kernel_size = k;
  o.stride = s;
  o.padding = p;
  o.count_include_pad = include_pad;
  return o;
}

// Direct definition over [planes, H, W] in double: padding is skipped by max and, unless
// count_include_pad, not counted by the average.
std::vector<double> ref_pool(const Tensor& xt, const Pool2dOptions& o, bool is_max) {
  const int64_t H = xt.size(-2), W = xt.size(-1), planes = xt.numel() / (H * W);
  const int64_t kh = o.kernel_size[0], kw = o.kernel_size[1];
  const int64_t sh = o.stride[0] ? o.stride[0] : kh, sw = o.stride[1] ? o.stride[1] : kw;
  const int64_t Ho = (H + 2 * o.padding[0] - kh) / sh + 1, Wo = (W + 2 * o.padding[1] - kw) / sw + 1;
  std::vector<double> x = xt.to_vector<double>(), out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t valid = 0;
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t b = 0; b < kw; ++b) {
            int64_t h = i * sh - o.padding[0] + a, w = j * sw - o.padding[1] + b;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = x[(p * H + h) * W + w];
            best = std::max(best, v);
            sum += v;
            ++valid;
          }
        out.push_back(is_max ? best : sum / double(o.count_include_pad ? kh * kw : valid));
      }
  return out;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], tol * (1 + std::abs(want[i]))) << "element " << i;
}

}  // namespace

TEST(Pool2d, HandComputed) {
  Tensor x = arange(1.0, 17.0, 1.0, {.dtype = DType::f64}).reshape({1, 1, 4, 4});
  Tensor m = max_pool2d(x);
  EXPECT_EQ(m.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(m.to_vector<double>(), (std::vector<double>{6, 8, 14, 16}));
  EXPECT_EQ(avg_pool2d(x).to_vector<double>(), (std::vector<double>{3.5, 5.5, 11.5, 13.5}));
  // 3x3 input 1..9, kernel 2, stride 2, padding 1: windows hold {1}, {2,3}, {4,7}, {5,6,8,9}.
  Tensor y = arange(1.0, 10.0, 1.0, {.dtype = DType::f64}).reshape({1, 3, 3});
  EXPECT_EQ(max_pool2d(y, popts({2, 2}, {2, 2}, {1, 1})).to_vector<double>(), (std::vector<double>{1, 3, 7, 9}));
  EXPECT_EQ(avg_pool2d(y, popts({2, 2}, {2, 2}, {1, 1})).to_vector<double>(), (std::vector<double>{0.25, 1.25, 2.75, 7}));
  EXPECT_EQ(avg_pool2d(y, popts({2, 2}, {2, 2}, {1, 1}, false)).to_vector<double>(), (std::vector<double>{1, 2.5, 5.5, 7}));
  // Max pooling pads with -inf, not 0: an all-negative input keeps its values.
  Tensor neg_in = full({1, 1, 2, 2}, -3.0, {.dtype = DType::f64});
  EXPECT_EQ(max_pool2d(neg_in, popts({2, 2}, {1, 1}, {1, 1})).to_vector<double>(), std::vector<double>(9, -3.0));
}

TEST(Pool2d, MatchesReference) {
  std::vector<std::pair<Shape, Pool2dOptions>> cases = {
      {{2, 3, 8, 8}, popts({2, 2})},
      {{2, 3, 7, 9}, popts({3, 2}, {2, 1}, {1, 1})},
      {{1, 2, 5, 6}, popts({3, 3}, {1, 2}, {1, 0}, false)},
      {{4, 5, 5}, popts({5, 5}, {1, 1}, {2, 2})},
      {{1, 1, 1, 7}, popts({1, 3}, {1, 3})},
  };
  uint64_t seed = 1;
  for (auto& [shape, o] : cases)
    for (DType dt : {DType::f64, DType::f32, DType::bf16}) {
      Generator g(seed++);
      Tensor x = randn(shape, {.dtype = dt}, &g);
      double tol = dt == DType::f64 ? 1e-12 : dt == DType::f32 ? 1e-6 : 1e-2;
      expect_close(max_pool2d(x, o), ref_pool(x, o, true), tol);
      expect_close(avg_pool2d(x, o), ref_pool(x, o, false), tol);
    }
}

TEST(Pool2d, NaNPropagatesThroughMax) {
  Tensor x = from_vector<double>({1, NAN, 3, 4}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(max_pool2d(x).item()));
}

TEST(Pool2d, Gradients) {
  using V = std::vector<Tensor>;
  for (const Pool2dOptions& o : {popts({2, 2}), popts({3, 2}, {2, 1}, {1, 1}), popts({3, 3}, {1, 1}, {1, 1}, false)}) {
    EXPECT_GRADCHECK([o](const V& in) { return max_pool2d(in[0], o); }, {rand_input({2, 2, 7, 6}, 1)});
    EXPECT_GRADCHECK([o](const V& in) { return avg_pool2d(in[0], o); }, {rand_input({2, 2, 7, 6}, 2)});
  }
  // Non-contiguous and unbatched input.
  EXPECT_GRADCHECK([](const V& in) { return max_pool2d(in[0].transpose(1, 2), popts({2, 2}, {1, 1})); },
                   {rand_input({3, 5, 4}, 3)});
  EXPECT_GRADCHECK([](const V& in) { return avg_pool2d(in[0].transpose(1, 2), popts({2, 2}, {1, 1}, {1, 1})); },
                   {rand_input({3, 5, 4}, 4)});
}

TEST(Pool2d, BadInputs) {
  Tensor x = zeros({1, 2, 3, 3});
  expect_error([&] { max_pool2d(x, popts({5, 5})); }, ErrorCode::InvalidArgument,
               {"max_pool2d", "kernel 5x5", "larger than the padded input", "3x3", "f32[1, 2, 3, 3]"});
  expect_error([&] { avg_pool2d(x, popts({4, 4}, {1, 1}, {0, 0})); }, ErrorCode::InvalidArgument,
               {"avg_pool2d", "larger than the padded input"});
  expect_error([&] { max_pool2d(x, popts({2, 2}, {1, 1}, {2, 2})); }, ErrorCode::InvalidArgument,
               {"max_pool2d", "padding", "half the kernel"});
  expect_error([&] { max_pool2d(zeros({3, 3})); }, ErrorCode::InvalidArgument, {"max_pool2d", "[N, C, H, W]", "f32[3, 3]"});
  expect_error([&] { avg_pool2d(zeros({1, 1, 4, 4}, {.dtype = DType::i64})); }, ErrorCode::InvalidArgument,
               {"avg_pool2d", "floating"});
  expect_error([&] { max_pool2d(x, popts({0, 2})); }, ErrorCode::InvalidArgument, {"max_pool2d", "kernel_size"});
}

// The 2x2 fast path keeps the general rule: the first maximum in scan order (row by row) gets the
// gradient, and the first NaN wins.
TEST(Pool2d, TwoByTwoTiesAndNaNFollowScanOrder) {
  // Window 0: all equal -> top-left; window 1: bottom row holds the max twice -> bottom-left;
  // window 2: NaN at bottom-right after a larger value -> NaN; window 3: two NaNs -> the first.
  Tensor x = from_vector<double>({0, 0, 1, 2, NAN, 9, 5, NAN,  //
                                  0, 0, 3, 3, 1, NAN, NAN, 0},
                                 {1, 1, 2, 8})
                 .detach()
                 .requires_grad_();
  Tensor y = max_pool2d(x);
  auto v = y.to_vector<double>();
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], 3);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_TRUE(std::isnan(v[3]));
  sum(y * from_vector<double>({1, 2, 3, 4}, {1, 1, 1, 4})).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 0, 0, 0, 3, 0, 0, 4,  //
                                                               0, 0, 2, 0, 0, 0, 0, 0}));
}
