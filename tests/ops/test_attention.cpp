#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::expect_error;
using kirzl::testing::rand_input;

namespace {

// Independent reference for contiguous [B, T, D] q, k and [B, T, Dv] v.
std::vector<double> ref_attention(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                                  int64_t B, int64_t T, int64_t D, int64_t Dv) {
  std::vector<double> out(B * T * Dv, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> s(T, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += q[(b * T + i) * D + d] * k[(b * T + j) * D + d];
        s[j] = dot / std::sqrt(static_cast<double>(D));
        m = std::max(m, s[j]);
      }
      double z = 0;
      for (int64_t j = 0; j <= i; ++j) z += std::exp(s[j] - m);
      for (int64_t j = 0; j <= i; ++j)
        for (int64_t e = 0; e < Dv; ++e) out[(b * T + i) * Dv + e] += std::exp(s[j] - m) / z * v[(b * T + j) * Dv + e];
    }
  return out;
}

}  // namespace

TEST(CausalAttention, HandComputed) {
  // T = 2, D = 1: row 0 sees only v0; row 1 mixes v0, v1 with weights softmax([q1 k0, q1 k1]).
  Tensor q = from_vector<double>({0.0, 1.0}, {2, 1});
  Tensor k = from_vector<double>({0.0, std::log(2.0)}, {2, 1});
  Tensor v = from_vector<double>({3.0, 6.0}, {2, 1});
  auto y = causal_attention(q, k, v).to_vector<double>();
  EXPECT_NEAR(y[0], 3.0, 1e-15);
  EXPECT_NEAR(y[1], 3.0 / 3 + 6.0 * 2 / 3, 1e-14);  // weights [1/3, 2/3]
}

TEST(CausalAttention, MatchesReference) {
  const int64_t B = 2, H = 3, T = 5, D = 4, Dv = 3;
  Tensor q = uniform({B, H, T, D}, -1, 1, {.dtype = DType::f64}, nullptr);
  Tensor k = uniform({B, H, T, D}, -1, 1, {.dtype = DType::f64}, nullptr);
  Tensor v = uniform({B, H, T, Dv}, -1, 1, {.dtype = DType::f64}, nullptr);
  Tensor y = causal_attention(q, k, v);
  EXPECT_EQ(y.shape(), Shape({B, H, T, Dv}));
  auto ref = ref_attention(q.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>(), B * H, T, D, Dv);
  auto yv = y.to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_NEAR(yv[i], ref[i], 1e-14);
  // f32 and a non-contiguous q.
  Tensor qt = q.to(DType::f32).transpose(0, 1).contiguous().transpose(0, 1);
  auto y32 = causal_attention(qt, k.to(DType::f32), v.to(DType::f32)).to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_NEAR(y32[i], ref[i], 1e-5);
}

TEST(CausalAttention, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2]); },
                   {rand_input({2, 1, 4, 3}, 1), rand_input({2, 1, 4, 3}, 2), rand_input({2, 1, 4, 2}, 3)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2]); },
                   {rand_input({3, 2}, 4), rand_input({3, 2}, 5), rand_input({3, 2}, 6)});
  // Only v requires grad.
  Tensor q = rand_input({4, 2}, 7).detach(), k = rand_input({4, 2}, 8).detach();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return causal_attention(q, k, in[0]); }, {rand_input({4, 2}, 9)});
}

TEST(CausalAttention, BadInput) {
  Tensor q = zeros({2, 3, 4});
  expect_error([&] { causal_attention(q, zeros({2, 3, 5}), q); }, ErrorCode::InvalidArgument,
               {"causal_attention", "k f32[2, 3, 5]", "q f32[2, 3, 4]"});
  expect_error([&] { causal_attention(q, q, zeros({2, 2, 4})); }, ErrorCode::InvalidArgument, {"causal_attention", "v f32[2, 2, 4]"});
  expect_error([&] { causal_attention(zeros({4}), zeros({4}), zeros({4})); }, ErrorCode::InvalidArgument,
               {"causal_attention", "[..., T, D]"});
  expect_error([&] { causal_attention(q, q, zeros({2, 3, 4}, {.dtype = DType::f64})); }, ErrorCode::InvalidArgument,
               {"causal_attention", "dtype"});
}
