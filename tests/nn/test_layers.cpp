#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/kirzl.hpp>
#include <kirzl/nn.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;
namespace nn = kirzl::nn;

TEST(Layers, BatchNormUpdatesRunningStatsAndUsesThemInEval) {
  nn::BatchNorm2d bn(2, {.momentum = 0.5});
  // Channel 0 holds 0..7, channel 1 holds 10 everywhere: means 3.5 and 10.
  std::vector<float> v;
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<float>(n * 4 + i));
    for (int i = 0; i < 4; ++i) v.push_back(10.0f);
  }
  auto x = from_vector(v, {2, 2, 2, 2});
  auto y = bn(x);
  auto rm = bn.running_mean.to_vector<float>();
  EXPECT_FLOAT_EQ(rm[0], 0.5f * 3.5f);
  EXPECT_FLOAT_EQ(rm[1], 0.5f * 10.0f);
  // Unbiased variance of 0..7 is 6; running_var = 0.5 * 1 + 0.5 * 6.
  EXPECT_NEAR(bn.running_var.to_vector<float>()[0], 3.5f, 1e-5);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  // Training output is normalised per channel.
  EXPECT_NEAR(mean(y.select(1, 0)).item(), 0.0, 1e-6);
  bn.eval();
  auto ye = bn(x);
  // Eval uses running stats: (x - 1.75) / sqrt(3.5 + eps) for channel 0.
  EXPECT_NEAR(ye.to_vector<float>()[0], (0 - 1.75) / std::sqrt(3.5 + 1e-5), 1e-5);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  EXPECT_KIRZL_ERROR(bn(zeros({2, 3, 2, 2})), ErrorCode::InvalidArgument, "3 channels", "expects 2");
}

TEST(Layers, DropoutIsIdentityInEval) {
  nn::Dropout d(0.5);
  auto x = ones({1000});
  auto yt = d(x);
  double kept = sum(ne(yt, zeros({1000}))).item();
  EXPECT_NEAR(kept, 500, 80);
  EXPECT_NEAR(max(yt).item(), 2.0, 1e-6);
  d.eval();
  EXPECT_EQ(d(x).to_vector<float>(), x.to_vector<float>());
}

TEST(Layers, ConvPoolFlattenShapes) {
  manual_seed(0);
  nn::Sequential cnn(nn::Conv2d(1, 4, 3, {.padding = {1, 1}}), nn::ReLU(), nn::MaxPool2d(2), nn::Conv2d(4, 8, 3),
                     nn::AvgPool2d(2), nn::Flatten(), nn::Linear(8 * 2 * 2, 3));
  auto y = cnn(randn({5, 1, 12, 12}));
  EXPECT_EQ(y.shape(), (Shape{5, 3}));
  sum(y).backward();
  for (auto& [n, p] : cnn.named_parameters()) EXPECT_TRUE(p.grad().defined()) << n;
}

TEST(Layers, EmbeddingAndLayerNormAndGelu) {
  nn::Embedding e(10, 4);
  auto idx = from_vector<int64_t>({1, 9, 1}, {3});
  auto y = e(idx);
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  EXPECT_EQ(y.select(0, 0).to_vector<float>(), e.weight.select(0, 1).to_vector<float>());
  nn::LayerNorm ln(4);
  auto z = ln(y);
  EXPECT_NEAR(mean(z.select(0, 1)).item(), 0.0, 1e-5);
  nn::GELU g(GeluApproximation::Tanh);
  EXPECT_EQ(g(z).shape(), z.shape());
}
