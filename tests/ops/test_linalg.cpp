#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;
using kirzl::testing::randn_t;

namespace {


// Plain triple loop over row-major doubles: out[M, N] = a[M, K] b[K, N].
std::vector<double> ref_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t M, int64_t K, int64_t N) {
  std::vector<double> out(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += a[i * K + k] * b[k * N + j];
      out[i * N + j] = s;
    }
  return out;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double rtol = 1e-12, double atol = 1e-12) {
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], want[i], atol + rtol * std::abs(want[i])) << "element " << i << " of " << got.describe();
}

}  // namespace

TEST(Matmul, HandComputed2x2) {
  Tensor a = from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor b = from_vector<double>({5, 6, 7, 8}, {2, 2});
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 2}));
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{19, 22, 43, 50}));
}

TEST(Matmul, OneDimensionalOperands) {
  Tensor v = from_vector<double>({1, 2, 3});
  Tensor w = from_vector<double>({4, 5, 6});
  Tensor dot = matmul(v, w);
  EXPECT_EQ(dot.dim(), 0);
  EXPECT_DOUBLE_EQ(dot.item(), 32.0);
  Tensor m = from_vector<double>({1, 0, 2, 1, 0, 3}, {3, 2});  // [[1,0],[2,1],[0,3]]
  Tensor vm = matmul(v, m);                                      // [1+4+0, 0+2+9]
  EXPECT_EQ(vm.shape(), (Shape{2}));
  EXPECT_EQ(vm.to_vector<double>(), (std::vector<double>{5, 11}));
  Tensor mv = matmul(m.t(), v);
  EXPECT_EQ(mv.shape(), (Shape{2}));
  EXPECT_EQ(mv.to_vector<double>(), (std::vector<double>{5, 11}));
  // 1-D times a batch of matrices: [3] x [2, 3, 2] -> [2, 2].
  Tensor ms = from_vector<double>({1, 0, 2, 1, 0, 3, 2, 0, 4, 2, 0, 6}, {2, 3, 2});  // m and 2 m
  Tensor bm = matmul(v, ms);
  EXPECT_EQ(bm.shape(), (Shape{2, 2}));
  EXPECT_EQ(bm.to_vector<double>(), (std::vector<double>{5, 11, 10, 22}));
}

TEST(Matmul, MatchesReferenceF64AndF32) {
  for (auto [M, K, N] : {std::array<int64_t, 3>{7, 13, 5}, {1, 9, 1}, {65, 130, 67}, {128, 64, 96}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor a = randn_t({M, K}, 1, dt), b = randn_t({K, N}, 2, dt);
      double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      expect_close(matmul(a, b), ref_mm(a.to_vector<double>(), b.to_vector<double>(), M, K, N), tol, tol);
    }
  }
}

TEST(Matmul, StridedOperandsMatchReference) {
  const int64_t M = 9, K = 11, N = 6;
  Tensor at = randn_t({K, M}, 3), bt = randn_t({N, K}, 4);
  std::vector<double> a = at.t().contiguous().to_vector<double>(), b = bt.t().contiguous().to_vector<double>();
  std::vector<double> want = ref_mm(a, b, M, K, N);
  expect_close(matmul(at.t(), bt.t()), want);  // both transposed: mapped as column-major
  // Every other column: neither stride is 1, so the kernel packs the operand.
  Tensor wide = randn_t({M, 2 * K}, 5);
  Tensor sliced = wide.slice(1, 0, 2 * K, 2);
  expect_close(matmul(sliced, from_vector<double>(b, {K, N})),
               ref_mm(sliced.contiguous().to_vector<double>(), b, M, K, N));
  // Output written through a transposed view of the result is the same product.
  expect_close(matmul(bt, at).t(), want);
}

TEST(Matmul, BatchBroadcastMatchesLoops) {
  Tensor a = randn_t({2, 1, 3, 4}, 6), b = randn_t({5, 4, 2}, 7);
  Tensor c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 5, 3, 2}));
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), want(2 * 5 * 3 * 2);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j)
      for (int m = 0; m < 3; ++m)
        for (int n = 0; n < 2; ++n) {
          double s = 0;
          for (int k = 0; k < 4; ++k) s += av[(i * 3 + m) * 4 + k] * bv[(j * 4 + k) * 2 + n];
          want[((i * 5 + j) * 3 + m) * 2 + n] = s;
        }
  expect_close(c, want);
}

TEST(Matmul, StackedRowsTimesMatrix) {
  Tensor a = randn_t({2, 3, 4}, 8), b = randn_t({4, 5}, 9);
  Tensor c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 3, 5}));
  expect_close(c, ref_mm(a.to_vector<double>(), b.to_vector<double>(), 6, 4, 5));
}

TEST(Bmm, MatchesPerBatchReference) {
  Tensor a = randn_t({3, 4, 5}, 10), b = randn_t({3, 5, 2}, 11);
  Tensor c = bmm(a, b);
  ASSERT_EQ(c.shape(), (Shape{3, 4, 2}));
  std::vector<double> want;
  for (int64_t i = 0; i < 3; ++i) {
    auto r = ref_mm(a.select(0, i).to_vector<double>(), b.select(0, i).to_vector<double>(), 4, 5, 2);
    want.insert(want.end(), r.begin(), r.end());
  }
  expect_close(c, want);
}

TEST(Linear, MatchesLoopsWithAndWithoutBias) {
  Tensor x = randn_t({2, 3, 4}, 12), w = randn_t({5, 4}, 13), b = randn_t({5}, 14);
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> want(6 * 5), want_nb(6 * 5);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 5; ++o) {
      double s = 0;
      for (int i = 0; i < 4; ++i) s += xv[r * 4 + i] * wv[o * 4 + i];
      want_nb[r * 5 + o] = s;
      want[r * 5 + o] = s + bv[o];
    }
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 5}));
  expect_close(y, want);
  expect_close(linear(x, w), want_nb);
  Tensor y1 = linear(x.select(0, 0).select(0, 0), w, b);  // 1-D input -> [out]
  EXPECT_EQ(y1.shape(), (Shape{5}));
  expect_close(y1, std::vector<double>(want.begin(), want.begin() + 5));
}

TEST(Matmul, EmptyDimensions) {
  Tensor c = matmul(ones({3, 0}), ones({0, 4}));  // empty inner dimension: zeros
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  EXPECT_EQ(c.to_vector<double>(), std::vector<double>(12, 0.0));
  EXPECT_EQ(matmul(ones({2, 0, 3}), ones({3, 4})).shape(), (Shape{2, 0, 4}));
  EXPECT_EQ(linear(ones({2, 0}), ones({4, 0}), full({4}, 2.0)).to_vector<double>(), std::vector<double>(8, 2.0));
}

TEST(Matmul, LowPrecisionMatchesF32) {
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor a = randn_t({33, 64}, 15, DType::f32).to(dt), b = randn_t({64, 17}, 16, DType::f32).to(dt);
    Tensor c = matmul(a, b);
    EXPECT_EQ(c.dtype(), dt);
    // Same (rounded) inputs in f32: only the final rounding to 16 bits differs.
    std::vector<double> want = matmul(a.to(DType::f32), b.to(DType::f32)).to_vector<double>();
    std::vector<double> got = c.to_vector<double>();
    double scale = 0;
    for (double v : want) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-2 * std::max(std::abs(want[i]), 0.1 * scale));
  }
}

TEST(Matmul, Gradients) {
  using V = std::vector<Tensor>;
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); }, {rand_input({3, 4}, 1), rand_input({4, 5}, 2)});
  // Transposed (non-contiguous) operands inside the function.
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0].t(), in[1].t()); },
                   {rand_input({4, 3}, 3), rand_input({5, 4}, 4)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); }, {rand_input({4}, 5), rand_input({4}, 6)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); }, {rand_input({4}, 7), rand_input({2, 4, 3}, 8)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); }, {rand_input({2, 3, 4}, 9), rand_input({4}, 10)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); },
                   {rand_input({2, 1, 3, 4}, 11), rand_input({5, 4, 2}, 12)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); }, {rand_input({2, 3, 4}, 13), rand_input({4, 5}, 14)});
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0].transpose(1, 2), in[1]); },
                   {rand_input({2, 4, 3}, 15), rand_input({4, 5}, 16)});
  EXPECT_GRADCHECK([](const V& in) { return bmm(in[0], in[1]); }, {rand_input({3, 2, 4}, 17), rand_input({3, 4, 2}, 18)});
}

TEST(Linear, Gradients) {
  using V = std::vector<Tensor>;
  EXPECT_GRADCHECK([](const V& in) { return linear(in[0], in[1], in[2]); },
                   {rand_input({2, 3, 4}, 1), rand_input({5, 4}, 2), rand_input({5}, 3)});
  EXPECT_GRADCHECK([](const V& in) { return linear(in[0], in[1]); }, {rand_input({3, 4}, 4), rand_input({2, 4}, 5)});
  EXPECT_GRADCHECK([](const V& in) { return linear(in[0].t(), in[1], in[2]); },
                   {rand_input({4, 3}, 6), rand_input({2, 4}, 7), rand_input({2}, 8)});
}

TEST(Matmul, BadInputs) {
  using kirzl::testing::expect_error;
  Tensor a = zeros({3, 4}), b = zeros({5, 6});
  expect_error([&] { matmul(a, b); }, ErrorCode::InvalidArgument, {"matmul", "[3, 4]", "[5, 6]"});
  expect_error([&] { matmul(a, zeros({4, 2}, {.dtype = DType::f64})); }, ErrorCode::InvalidArgument,
               {"matmul", "expected same dtype", "f32[3, 4]", "f64[4, 2]"});
  expect_error([&] { matmul(zeros({3, 4}, {.dtype = DType::i64}), zeros({4, 2}, {.dtype = DType::i64})); },
               ErrorCode::InvalidArgument, {"matmul", "floating", "i64[3, 4]"});
  expect_error([&] { matmul(zeros({2, 3, 4}), zeros({3, 4, 2})); }, ErrorCode::InvalidArgument,
               {"matmul", "batch", "[2, 3, 4]", "[3, 4, 2]"});
  expect_error([&] { matmul(scalar_tensor(1.0), a); }, ErrorCode::InvalidArgument, {"matmul", "at least one dimension"});
  expect_error([&] { bmm(a, b); }, ErrorCode::InvalidArgument, {"bmm", "3-D"});
  expect_error([&] { bmm(zeros({2, 3, 4}), zeros({3, 4, 2})); }, ErrorCode::InvalidArgument, {"bmm", "batch"});
}

TEST(Linear, BadInputs) {
  using kirzl::testing::expect_error;
  expect_error([&] { linear(zeros({128, 783}), zeros({256, 784})); }, ErrorCode::InvalidArgument,
               {"linear", "783 features", "expects 784", "f32[128, 783]", "f32[256, 784]"});
  expect_error([&] { linear(zeros({2, 4}), zeros({3, 4}), zeros({4})); }, ErrorCode::InvalidArgument,
               {"linear", "bias", "[3]"});
  expect_error([&] { linear(zeros({2, 4}), zeros({3, 4}, {.dtype = DType::f64})); }, ErrorCode::InvalidArgument,
               {"linear", "expected same dtype"});
}
