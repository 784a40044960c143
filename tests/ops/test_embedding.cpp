#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

TEST(Embedding, PicksRows) {
  Tensor w = arange(0.0, 12.0, 1.0, {.dtype = DType::f32}).reshape({4, 3});
  Tensor idx = from_vector<int64_t>({3, 0, 3, 1}, {2, 2});
  Tensor y = embedding(w, idx);
  EXPECT_EQ(y.shape(), Shape({2, 2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5}));
  // i32 indices, 0-d indices.
  EXPECT_EQ(embedding(w, from_vector<int32_t>({2})).to_vector<float>(), (std::vector<float>{6, 7, 8}));
  Tensor y0 = embedding(w, scalar_tensor(1, {.dtype = DType::i64}));
  EXPECT_EQ(y0.shape(), Shape({3}));
  EXPECT_EQ(y0.to_vector<float>(), (std::vector<float>{3, 4, 5}));
}

TEST(Embedding, BackwardScatterAddsRepeats) {
  Tensor w = zeros({4, 2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor idx = from_vector<int64_t>({1, 3, 1, 1});
  Tensor g = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  embedding(w, idx).backward(g);
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{0, 0, 1 + 5 + 7, 2 + 6 + 8, 0, 0, 3, 4}));
}

TEST(Embedding, BackwardMatchesReferenceAtScale) {
  // Enough work to run the column-blocked backward on several threads; compared to a plain loop.
  const int64_t num = 50, dim = 700, n = 400;
  Tensor w = zeros({num, dim}, {.requires_grad = true});
  Tensor idx = randint(0, num, {n});
  Tensor g = uniform({n, dim}, -1, 1);
  embedding(w, idx).backward(g);
  auto iv = idx.to_vector<int64_t>();
  auto gv = g.to_vector<float>();
  std::vector<float> ref(num * dim, 0.f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) ref[iv[i] * dim + j] += gv[i * dim + j];
  EXPECT_EQ(w.grad().to_vector<float>(), ref);  // same summation order: bit-identical
}

TEST(Embedding, Gradcheck) {
  Tensor idx = from_vector<int32_t>({0, 2, 2, 4, 1, 0}, {2, 3});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return embedding(in[0], idx); }, {rand_input({5, 3}, 1)});
}

TEST(Embedding, BadInput) {
  Tensor w = zeros({4, 3});
  expect_error([&] { embedding(w, from_vector<int64_t>({0, 4})); }, ErrorCode::InvalidArgument,
               {"embedding", "index 4", "4 rows"});
  expect_error([&] { embedding(w, from_vector<int64_t>({-1})); }, ErrorCode::InvalidArgument, {"index -1", "4 rows"});
  expect_error([&] { embedding(w, zeros({2})); }, ErrorCode::InvalidArgument, {"embedding", "i32 or i64", "f32[2]"});
  expect_error([&] { embedding(zeros({4}), from_vector<int64_t>({0})); }, ErrorCode::InvalidArgument,
               {"embedding", "[num, dim]", "f32[4]"});
}
