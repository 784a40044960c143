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


// Direct definition of a grouped, strided, padded, dilated cross-correlation, in double.
std::vector<double> ref_conv(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Conv2dOptions& o) {
  const int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t O = wt.size(0), Cg = wt.size(1), kh = wt.size(2), kw = wt.size(3), Og = O / o.groups;
  const int64_t Ho = (H + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  const int64_t Wo = (W + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  std::vector<double> x = xt.to_vector<double>(), w = wt.to_vector<double>();
  std::vector<double> b = bt.defined() ? bt.to_vector<double>() : std::vector<double>(O, 0.0);
  std::vector<double> out(N * O * Ho * Wo);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double s = b[oc];
          const int64_t grp = oc / Og;
          for (int64_t ic = 0; ic < Cg; ++ic)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t h = i * o.stride[0] - o.padding[0] + p * o.dilation[0];
                const int64_t v = j * o.stride[1] - o.padding[1] + q * o.dilation[1];
                if (h < 0 || h >= H || v < 0 || v >= W) continue;
                s += x[((n * C + grp * Cg + ic) * H + h) * W + v] * w[((oc * Cg + ic) * kh + p) * kw + q];
              }
          out[((n * O + oc) * Ho + i) * Wo + j] = s;
        }
  return out;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], tol * (1 + std::abs(want[i]))) << "element " << i;
}

Conv2dOptions opts(std::array<int64_t, 2> s, std::array<int64_t, 2> p, std::array<int64_t, 2> d, int64_t groups) {
  Conv2dOptions o;
  o.stride = s;
  o.padding = p;
  o.dilation = d;
  o.groups = groups;
  return o;
}

}  // namespace

TEST(Conv2d, HandComputed) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = from_vector<double>({1, 0, 0, 1}, {1, 1, 2, 2});  // x[i][j] + x[i+1][j+1]
  Tensor y = conv2d(x, w, from_vector<double>({1}));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{7, 9, 13, 15}));
  // Padding 1 with a 1x1 kernel of 2 and stride 2: corners of the zero-padded 5x5 grid.
  Conv2dOptions o;
  o.padding = {1, 1};
  o.stride = {2, 2};
  Tensor y2 = conv2d(x, full({1, 1, 1, 1}, 2.0, {.dtype = DType::f64}), Tensor(), o);
  EXPECT_EQ(y2.to_vector<double>(), (std::vector<double>{0, 0, 0, 0, 10, 0, 0, 0, 0}));
}

TEST(Conv2d, MatchesReference) {
  struct Case {
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  std::vector<Case> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, opts({1, 1}, {0, 0}, {1, 1}, 1), true},
      {{2, 4, 7, 6}, {6, 2, 3, 2}, opts({2, 1}, {1, 2}, {2, 1}, 2), true},
      {{3, 4, 9, 8}, {4, 1, 3, 3}, opts({2, 2}, {1, 1}, {2, 2}, 4), false},  // depthwise
      {{2, 5, 4, 3}, {3, 5, 1, 1}, opts({1, 1}, {0, 0}, {1, 1}, 1), true},   // pointwise: no im2col
      {{1, 2, 5, 5}, {2, 2, 5, 5}, opts({1, 1}, {0, 0}, {1, 1}, 1), true},   // kernel = input
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor x = randn_t(c.x, seed++, dt), w = randn_t(c.w, seed++, dt);
      Tensor b = c.bias ? randn_t({c.w[0]}, seed++, dt) : Tensor();
      expect_close(conv2d(x, w, b, c.o), ref_conv(x, w, b, c.o), dt == DType::f64 ? 1e-12 : 1e-5);
    }
  }
}

// Every combination of stride, padding and dilation on odd sizes, including paddings wider than
// the kernel reaches (whole column-matrix rows in padding): the row-wise im2col/col2im edges.
TEST(Conv2d, GeometrySweepMatchesReference) {
  uint64_t seed = 100;
  for (int64_t s : {1, 2, 3})
    for (int64_t p : {0, 1, 3})
      for (int64_t d : {1, 2}) {
        SCOPED_TRACE(::testing::Message() << "stride " << s << " padding " << p << " dilation " << d);
        Conv2dOptions o = opts({s, 1}, {p, p}, {d, d}, 1);
        o.stride = {s, s + 1 > 3 ? 1 : s + 1};
        Tensor x = randn_t({1, 2, 5, 7}, seed++), w = randn_t({3, 2, 2, 3}, seed++);
        expect_close(conv2d(x, w, Tensor(), o), ref_conv(x, w, Tensor(), o), 1e-12);
        if (d == 1 && p != 1) {
          using V = std::vector<Tensor>;
          EXPECT_GRADCHECK([o](const V& in) { return conv2d(in[0], in[1], Tensor(), o); },
                           {rand_input({1, 2, 5, 7}, seed++), rand_input({3, 2, 2, 3}, seed++)});
        }
      }
}

TEST(Conv2d, UnbatchedInput) {
  Tensor x = randn_t({3, 6, 5}, 1), w = randn_t({2, 3, 3, 3}, 2);
  Tensor y = conv2d(x, w);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 3}));
  expect_close(y, ref_conv(x.unsqueeze(0), w, Tensor(), {}), 1e-12);
}

TEST(Conv2d, LowPrecisionMatchesF32) {
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor x = randn_t({2, 4, 6, 6}, 3, DType::f32).to(dt), w = randn_t({4, 2, 3, 3}, 4, DType::f32).to(dt);
    Conv2dOptions o = opts({1, 1}, {1, 1}, {1, 1}, 2);
    Tensor y = conv2d(x, w, Tensor(), o);
    EXPECT_EQ(y.dtype(), dt);
    std::vector<double> want = ref_conv(x.to(DType::f64), w.to(DType::f64), Tensor(), o);
    std::vector<double> got = y.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-2 * (1 + std::abs(want[i])));
  }
}

TEST(Conv2d, Gradients) {
  using V = std::vector<Tensor>;
  Conv2dOptions o = opts({2, 2}, {1, 1}, {2, 2}, 2);
  EXPECT_GRADCHECK([o](const V& in) { return conv2d(in[0], in[1], in[2], o); },
                   {rand_input({2, 4, 7, 6}, 1), rand_input({6, 2, 3, 2}, 2), rand_input({6}, 3)});
  // Non-contiguous input (channels-last storage permuted to NCHW) and asymmetric options.
  Conv2dOptions o2 = opts({1, 2}, {2, 0}, {1, 1}, 1);
  EXPECT_GRADCHECK([o2](const V& in) { return conv2d(in[0].permute({0, 3, 1, 2}), in[1], Tensor(), o2); },
                   {rand_input({2, 5, 6, 3}, 4), rand_input({2, 3, 2, 3}, 5)});
  // Pointwise (1x1) path.
  EXPECT_GRADCHECK([](const V& in) { return conv2d(in[0], in[1], in[2]); },
                   {rand_input({2, 3, 4, 3}, 6), rand_input({4, 3, 1, 1}, 7), rand_input({4}, 8)});
  // Unbatched input.
  EXPECT_GRADCHECK([](const V& in) { return conv2d(in[0], in[1]); }, {rand_input({2, 5, 4}, 9), rand_input({3, 2, 2, 2}, 10)});
}

TEST(Conv2d, BadInputs) {
  Tensor x = zeros({2, 3, 8, 8});
  expect_error([&] { conv2d(x, zeros({4, 2, 3, 3})); }, ErrorCode::InvalidArgument,
               {"conv2d", "input has 3 channels", "expects 2", "f32[2, 3, 8, 8]", "f32[4, 2, 3, 3]"});
  expect_error([&] { conv2d(x, zeros({4, 1, 3, 3}), Tensor(), opts({1, 1}, {0, 0}, {1, 1}, 2)); },
               ErrorCode::InvalidArgument, {"conv2d", "groups = 2", "divide", "3"});
  expect_error([&] { conv2d(x, zeros({4, 3, 9, 3})); }, ErrorCode::InvalidArgument,
               {"conv2d", "larger than the padded input", "9x3", "8x8"});
  expect_error([&] { conv2d(x, zeros({4, 3, 3, 3}), Tensor(), opts({1, 1}, {0, 0}, {5, 1}, 1)); },
               ErrorCode::InvalidArgument, {"conv2d", "larger than the padded input"});
  expect_error([&] { conv2d(x, zeros({4, 3, 3, 3}, {.dtype = DType::f64})); }, ErrorCode::InvalidArgument,
               {"conv2d", "expected same dtype"});
  expect_error([&] { conv2d(x, zeros({4, 3, 3, 3}), zeros({3})); }, ErrorCode::InvalidArgument, {"conv2d", "bias", "[4]"});
  expect_error([&] { conv2d(zeros({3, 8}), zeros({4, 3, 3, 3})); }, ErrorCode::InvalidArgument, {"conv2d", "[N, C, H, W]"});
  expect_error([&] { conv2d(x, zeros({4, 3, 3, 3}), Tensor(), opts({0, 1}, {0, 0}, {1, 1}, 1)); },
               ErrorCode::InvalidArgument, {"conv2d", "stride"});
  expect_error([&] { conv2d(zeros({1, 3, 4, 4}, {.dtype = DType::i32}), zeros({1, 3, 3, 3}, {.dtype = DType::i32})); },
               ErrorCode::InvalidArgument, {"conv2d", "floating"});
}
