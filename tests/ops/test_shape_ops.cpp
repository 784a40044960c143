#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

namespace {
Tensor iota(const Shape& s, double start = 0) {
  return arange(start, start + static_cast<double>(s.numel()), 1.0, {.dtype = DType::f64}).reshape(s);
}
}  // namespace

TEST(Cat, Values) {
  Tensor a = iota({2, 2}), b = iota({2, 1}, 10), c = iota({2, 3}, 20);
  Tensor y = cat({a, b, c}, 1);
  EXPECT_EQ(y.shape(), Shape({2, 6}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{0, 1, 10, 20, 21, 22, 2, 3, 11, 23, 24, 25}));
  Tensor z = cat({a, iota({1, 2}, 5)}, -2);
  EXPECT_EQ(z.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 5, 6}));
  // Non-contiguous input and an empty piece.
  Tensor w = cat({a.t(), zeros({0, 2}, {.dtype = DType::f64}), a}, 0);
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{0, 2, 1, 3, 0, 1, 2, 3}));
}

TEST(Stack, Values) {
  Tensor a = iota({2, 3}), b = iota({2, 3}, 6);
  Tensor s0 = stack({a, b});
  EXPECT_EQ(s0.shape(), Shape({2, 2, 3}));
  EXPECT_EQ(s0.to_vector<double>(), cat({a, b}).to_vector<double>());
  Tensor s2 = stack({a, b}, -1);
  EXPECT_EQ(s2.shape(), Shape({2, 3, 2}));
  EXPECT_EQ(s2.to_vector<double>(), (std::vector<double>{0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11}));
  Tensor s1 = stack({a, b}, 1);
  EXPECT_EQ(s1.shape(), Shape({2, 2, 3}));
  EXPECT_EQ(s1.to_vector<double>(), (std::vector<double>{0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11}));
  Tensor sc = stack({scalar_tensor(1.0), scalar_tensor(2.0)});
  EXPECT_EQ(sc.to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(Split, SizesAndViews) {
  Tensor x = iota({7, 2});
  auto parts = split(x, 3);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), Shape({3, 2}));
  EXPECT_EQ(parts[2].shape(), Shape({1, 2}));
  EXPECT_EQ(parts[2].to_vector<double>(), (std::vector<double>{12, 13}));
  EXPECT_EQ(parts[1].data_ptr(), static_cast<double*>(x.data_ptr()) + 6);  // a view, no copy
  auto by = split(x, std::vector<int64_t>{2, 0, 5});
  ASSERT_EQ(by.size(), 3u);
  EXPECT_EQ(by[1].shape(), Shape({0, 2}));
  EXPECT_EQ(by[2].to_vector<double>()[0], 4.0);
  auto cols = split(x, 1, 1);
  EXPECT_EQ(cols[1].to_vector<double>(), (std::vector<double>{1, 3, 5, 7, 9, 11, 13}));
}

TEST(Chunk, NearlyEqual) {
  Tensor x = iota({10});
  auto c = chunk(x, 3);
  ASSERT_EQ(c.size(), 3u);  // 4, 4, 2 as in PyTorch
  EXPECT_EQ(c[0].numel(), 4);
  EXPECT_EQ(c[2].numel(), 2);
  EXPECT_EQ(chunk(iota({6}), 4).size(), 3u);  // ceil(6 / 4) = 2 per piece -> 3 pieces
  EXPECT_EQ(chunk(iota({2, 4}), 2, 1)[1].to_vector<double>(), (std::vector<double>{2, 3, 6, 7}));
}

TEST(ShapeOps, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 1); },
                   {rand_input({2, 3}, 1), rand_input({2, 1}, 2), rand_input({2, 2}, 3)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0].t(), in[1]}, 0); },
                   {rand_input({3, 2}, 4), rand_input({1, 3}, 5)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, 1); },
                   {rand_input({2, 3}, 6), rand_input({2, 3}, 7)});
  // Splits: weight each piece differently so every piece's gradient is checked.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        auto p = split(in[0], std::vector<int64_t>{1, 3}, 1);
        return cat({mul(p[1], 2.0), p[0]}, 1);
      },
      {rand_input({2, 4}, 8)});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        auto p = chunk(in[0], 2, 0);
        return mul(p[0], p[1]);
      },
      {rand_input({4, 3}, 9)});
}

TEST(Cat, OnlySomeInputsRequireGrad) {
  Tensor a = ones({2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor b = ones({3}, {.dtype = DType::f64});
  Tensor y = cat({b, a});
  sum(mul(y, iota({5}))).backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3, 4}));
}

TEST(ShapeOps, BadInput) {
  Tensor a = zeros({2, 3}), b = zeros({2, 4}), c = zeros({3, 3});
  expect_error([] { cat({}); }, ErrorCode::InvalidArgument, {"cat", "non-empty"});
  expect_error([&] { cat({a, a, c}, 1); }, ErrorCode::InvalidArgument, {"cat", "tensor 2", "[3, 3]", "[2, 3]", "dimension 1"});
  expect_error([&] { cat({a, zeros({2, 3, 1})}); }, ErrorCode::InvalidArgument, {"cat", "tensor 1", "[2, 3, 1]", "[2, 3]"});
  expect_error([&] { cat({a, zeros({2, 3}, {.dtype = DType::f64})}); }, ErrorCode::InvalidArgument,
               {"cat", "tensor 1", "dtype", "f64[2, 3]"});
  expect_error([&] { cat({a, b}, 2); }, ErrorCode::InvalidArgument, {"cat", "dimension 2", "out of range"});
  expect_error([&] { cat({scalar_tensor(1.0)}); }, ErrorCode::InvalidArgument, {"cat", "0-d"});
  expect_error([&] { stack({a, b}); }, ErrorCode::InvalidArgument, {"stack", "tensor 1", "[2, 4]", "[2, 3]", "equal shapes"});
  expect_error([&] { stack({a}, 3); }, ErrorCode::InvalidArgument, {"stack", "dimension 3", "out of range"});
  expect_error([] { stack({}); }, ErrorCode::InvalidArgument, {"stack", "non-empty"});
  expect_error([&] { split(a, std::vector<int64_t>{1, 1}, 1); }, ErrorCode::InvalidArgument, {"split", "sum to 2", "extent 3"});
  expect_error([&] { split(a, 0); }, ErrorCode::InvalidArgument, {"split", "split_size", "> 0"});
  expect_error([&] { split(a, 1, -3); }, ErrorCode::InvalidArgument, {"split", "dimension -3", "out of range"});
  expect_error([&] { chunk(a, 0); }, ErrorCode::InvalidArgument, {"chunk", "> 0"});
}
