#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;

TEST(Dropout, SameSeedSameMask) {
  Tensor x = ones({1000});
  Generator g1(42), g2(42), g3(43);
  auto a = dropout(x, 0.3, true, &g1).to_vector<float>();
  auto b = dropout(x, 0.3, true, &g2).to_vector<float>();
  auto c = dropout(x, 0.3, true, &g3).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The stream advances: a second call with g1 gives a different mask.
  EXPECT_NE(dropout(x, 0.3, true, &g1).to_vector<float>(), a);
}

TEST(Dropout, MaskIsPhiloxOfReservedBlocks) {
  // Note [dropout mask]: element i is dropped when word i % 4 of philox(seed, offset + i / 4) < p.
  Generator g(7);
  g.reserve(5);
  Tensor y = dropout(ones({10}, {.dtype = DType::f64}), 0.5, true, &g);
  EXPECT_EQ(g.offset(), 5u + 3u);  // ceil(10 / 4) blocks reserved
  auto v = y.to_vector<double>();
  for (int i = 0; i < 10; ++i) {
    auto r = Generator::philox(7, 5 + i / 4);
    bool drop = uint_to_unit_float(r[i % 4]) < 0.5f;
    EXPECT_EQ(v[i], drop ? 0.0 : 2.0) << "element " << i;
  }
}

TEST(Dropout, FractionKeptAndScaling) {
  Generator g(1);
  const double p = 0.25;
  Tensor x = full({200000}, 3.0);
  auto y = dropout(x, p, true, &g).to_vector<float>();
  int64_t kept = 0;
  for (float v : y) {
    if (v != 0.f) {
      ++kept;
      EXPECT_FLOAT_EQ(v, 3.0f / 0.75f);
    }
  }
  // Binomial std: sqrt(n p (1-p)) ~ 194; allow 5 sigma.
  EXPECT_NEAR(static_cast<double>(kept), 200000 * 0.75, 1000);
}

TEST(Dropout, EvalAndZeroPAreIdentity) {
  Tensor x = randn({3, 4});
  Generator g(5);
  EXPECT_EQ(dropout(x, 0.5, false, &g).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(dropout(x, 0.0, true, &g).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(g.offset(), 0u);  // nothing drawn
}

TEST(Dropout, PEqualOneDropsEverything) {
  Tensor x = ones({17}, {.requires_grad = true});
  Generator g(3);
  Tensor y = dropout(x, 1.0, true, &g);
  for (float v : y.to_vector<float>()) EXPECT_EQ(v, 0.f);
  sum(y).backward();
  for (float v : x.grad().to_vector<float>()) EXPECT_EQ(v, 0.f);
}

TEST(Dropout, BackwardUsesTheSameMask) {
  Tensor x = uniform({5, 7}, 1, 2, {.dtype = DType::f64, .requires_grad = true}, nullptr);
  Generator g(11);
  const double p = 0.4;
  Tensor y = dropout(x, p, true, &g);
  Tensor up = uniform({5, 7}, -1, 1, {.dtype = DType::f64}, nullptr);
  y.backward(up);
  auto yv = y.to_vector<double>(), gv = x.grad().to_vector<double>(), uv = up.to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_DOUBLE_EQ(gv[i], yv[i] == 0.0 ? 0.0 : uv[i] / (1 - p));
}

TEST(Dropout, NonContiguousAndBf16) {
  Generator g1(9), g2(9);
  Tensor base = uniform({6, 5}, 1, 2, {}, nullptr);
  auto a = dropout(base.t(), 0.5, true, &g1).to_vector<float>();
  auto b = dropout(base.t().contiguous(), 0.5, true, &g2).to_vector<float>();
  EXPECT_EQ(a, b);  // the mask follows row-major element order, not storage order
  Generator g3(9);
  Tensor yb = dropout(ones({64}, {.dtype = DType::bf16}), 0.5, true, &g3);
  for (double v : yb.to_vector<double>()) EXPECT_TRUE(v == 0.0 || v == 2.0);
}

TEST(Dropout, BadInput) {
  Tensor x = ones({3});
  expect_error([&] { dropout(x, 1.5); }, ErrorCode::InvalidArgument, {"dropout", "[0, 1]", "1.5", "f32[3]"});
  expect_error([&] { dropout(x, -0.1); }, ErrorCode::InvalidArgument, {"dropout", "-0.1"});
  expect_error([&] { dropout(ones({3}, {.dtype = DType::i32}), 0.5); }, ErrorCode::InvalidArgument, {"dropout", "floating"});
}
