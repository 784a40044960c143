#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <utility>
#include <vector>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"
#include "support/scoped_env.hpp"

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

// The tests below run on both CPU kernel sets (Note [attention path]): the flash kernels
// (KIRZL_ATTENTION=auto) and the reference kernels that save the T x T probabilities.
class CausalAttentionPath : public ::testing::TestWithParam<const char*> {
  kirzl::testing::ScopedEnv path_{"KIRZL_ATTENTION", std::string(GetParam())};
};
INSTANTIATE_TEST_SUITE_P(Cpu, CausalAttentionPath, ::testing::Values("auto", "reference"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST_P(CausalAttentionPath, HandComputed) {
  // T = 2, D = 1: row 0 sees only v0; row 1 mixes v0, v1 with weights softmax([q1 k0, q1 k1]).
  Tensor q = from_vector<double>({0.0, 1.0}, {2, 1});
  Tensor k = from_vector<double>({0.0, std::log(2.0)}, {2, 1});
  Tensor v = from_vector<double>({3.0, 6.0}, {2, 1});
  auto y = causal_attention(q, k, v).to_vector<double>();
  EXPECT_NEAR(y[0], 3.0, 1e-15);
  EXPECT_NEAR(y[1], 3.0 / 3 + 6.0 * 2 / 3, 1e-14);  // weights [1/3, 2/3]
}

TEST_P(CausalAttentionPath, MatchesReference) {
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

TEST_P(CausalAttentionPath, Gradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2]); },
                   {rand_input({2, 1, 4, 3}, 1), rand_input({2, 1, 4, 3}, 2), rand_input({2, 1, 4, 2}, 3)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2]); },
                   {rand_input({3, 2}, 4), rand_input({3, 2}, 5), rand_input({3, 2}, 6)});
  // Only v requires grad.
  Tensor q = rand_input({4, 2}, 7).detach(), k = rand_input({4, 2}, 8).detach();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return causal_attention(q, k, in[0]); }, {rand_input({4, 2}, 9)});
}

namespace {

// causal_attention composed of matmul, masked_fill and softmax (every op with its own backward).
Tensor composed_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t T = q.size(-2), D = q.size(-1);
  std::vector<uint8_t> above(T * T);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) above[i * T + j] = j > i;
  Tensor s = matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(D)));
  return matmul(softmax(masked_fill(s, from_vector<uint8_t>(above, {T, T}), -INFINITY), -1), v);
}

struct AttentionRun {
  std::vector<double> y, gq, gk, gv;
};
AttentionRun run_attention(const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& g, bool composed) {
  Tensor q = q0.detach().requires_grad_(true), k = k0.detach().requires_grad_(true), v = v0.detach().requires_grad_(true);
  Tensor y = composed ? composed_attention(q, k, v) : causal_attention(q, k, v);
  y.backward(g);
  return {y.to_vector<double>(), q.grad().to_vector<double>(), k.grad().to_vector<double>(), v.grad().to_vector<double>()};
}

}  // namespace

// Shapes past the CPU kernels' blocks (4 rows), column tiles (32 floats, 16 doubles) and the flash
// backward's key chunks (64 keys) with tails in each, against the composition of plain ops,
// forward and backward.
TEST_P(CausalAttentionPath, MatchesCompositionAcrossRowBlocksAndColumnTiles) {
  const int64_t B = 2, H = 2, D = 40;
  for (auto [dt, Dv, T] : {std::tuple{DType::f64, int64_t{19}, int64_t{37}}, {DType::f32, int64_t{19}, int64_t{37}},
                           {DType::f64, D, int64_t{37}}, {DType::f32, D, int64_t{37}}, {DType::f64, int64_t{19}, int64_t{150}},
                           {DType::f32, D, int64_t{150}}}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(dt) << ", Dv = " << Dv << ", T = " << T);
    Tensor q = uniform({B, H, T, D}, -2, 2, {.dtype = dt}, nullptr);
    Tensor k = uniform({B, H, T, D}, -2, 2, {.dtype = dt}, nullptr);
    Tensor v = uniform({B, H, T, Dv}, -1, 1, {.dtype = dt}, nullptr);
    Tensor g = uniform({B, H, T, Dv}, -1, 1, {.dtype = dt}, nullptr);
    const AttentionRun a = run_attention(q, k, v, g, false), b = run_attention(q, k, v, g, true);
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    for (auto [x, y, name] : {std::tuple{&a.y, &b.y, "y"}, {&a.gq, &b.gq, "dq"}, {&a.gk, &b.gk, "dk"}, {&a.gv, &b.gv, "dv"}})
      for (size_t i = 0; i < x->size(); ++i) ASSERT_NEAR((*x)[i], (*y)[i], tol) << name << " element " << i;
  }
}

// Causality holds for non-finite values too: a later position's inf or NaN never reaches an
// earlier query's output, and a query's gradient never reaches the keys and values it cannot see.
TEST_P(CausalAttentionPath, ValuesOutsideTheCausalRangeNeverReachARow) {
  const int64_t B = 1, H = 2, T = 11, D = 6;
  Tensor q = uniform({B, H, T, D}, -1, 1, {}, nullptr), k = uniform({B, H, T, D}, -1, 1, {}, nullptr);
  Tensor v = uniform({B, H, T, D}, -1, 1, {}, nullptr), g = uniform({B, H, T, D}, -1, 1, {}, nullptr);
  // The last position's q, k, v poisoned (y rows < T - 1 must not change); query 0's incoming
  // gradient poisoned (the k and v gradients of positions >= 1 must not change).
  auto poisoned = [&](const Tensor& t, int64_t pos, double value) {
    Tensor c = t.clone();
    c.narrow(2, pos, 1).fill_(value);
    return c;
  };
  const AttentionRun clean = run_attention(q, k, v, g, false);
  const AttentionRun late = run_attention(poisoned(q, T - 1, NAN), poisoned(k, T - 1, INFINITY),
                                          poisoned(v, T - 1, INFINITY), g, false);
  const AttentionRun first = run_attention(q, k, v, poisoned(g, 0, INFINITY), false);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = static_cast<size_t>((h * T + t) * D + d);
        if (t < T - 1) {
          ASSERT_EQ(late.y[at], clean.y[at]) << "y head " << h << " position " << t;
        }
        if (t >= 1) {
          ASSERT_EQ(first.gk[at], clean.gk[at]) << "dk head " << h << " position " << t;
          ASSERT_EQ(first.gv[at], clean.gv[at]) << "dv head " << h << " position " << t;
        }
      }
}

// The CPU kernels split work over (batch, head), and the flash kernels within a pair where there
// are fewer pairs than threads: every sum runs in one order, whatever the thread count.
TEST_P(CausalAttentionPath, SameBitsOnAnyThreadCount) {
  // 16 (batch, head) pairs, and one: split across the threads (Note [flash attention threads]).
  for (auto [B, H, T] : {std::tuple{int64_t{4}, int64_t{4}, int64_t{70}}, {int64_t{1}, int64_t{1}, int64_t{150}}}) {
    SCOPED_TRACE(::testing::Message() << "B " << B << " H " << H << " T " << T);
    const int64_t D = 32;
    Tensor q = uniform({B, H, T, D}, -1, 1, {}, nullptr), k = uniform({B, H, T, D}, -1, 1, {}, nullptr);
    Tensor v = uniform({B, H, T, D}, -1, 1, {}, nullptr), g = uniform({B, H, T, D}, -1, 1, {}, nullptr);
    const int threads = get_num_threads();
    set_num_threads(1);
    const AttentionRun one = run_attention(q, k, v, g, false);
    set_num_threads(2);
    const AttentionRun two = run_attention(q, k, v, g, false);
    set_num_threads(threads);
    EXPECT_EQ(one.y, two.y);
    EXPECT_EQ(one.gq, two.gq);
    EXPECT_EQ(one.gk, two.gk);
    EXPECT_EQ(one.gv, two.gv);
  }
}

// The flash kernels (the CPU's default, Note [flash path]) keep nothing of size T x T for the
// backward: at T = 1024 the saved probabilities of the reference kernels would be 4 MiB per head.
TEST(CausalAttention, FlashPathSavesNoTByTMatrix) {
  const int64_t H = 2, T = 1024, D = 16;
  Tensor q = uniform({1, H, T, D}, -1, 1, {}, nullptr).requires_grad_(true);
  Tensor k = uniform({1, H, T, D}, -1, 1, {}, nullptr).requires_grad_(true);
  Tensor v = uniform({1, H, T, D}, -1, 1, {}, nullptr).requires_grad_(true);
  const size_t probs_bytes = static_cast<size_t>(H * T * T) * sizeof(float);
  auto held_by_forward = [&](const char* path) {
    kirzl::testing::ScopedEnv mode("KIRZL_ATTENTION", std::string(path));
    const size_t before = cpu_allocator_stats().allocated;
    Tensor y = causal_attention(q, k, v);  // its graph holds what backward needs
    const size_t held = cpu_allocator_stats().allocated - before;
    y.backward(ones_like(y));
    return held;
  };
  EXPECT_GE(held_by_forward("reference"), probs_bytes);
  EXPECT_LT(held_by_forward("auto"), probs_bytes / 16);
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

// causal_attention_qkv against the composition it stands for (split, heads, causal_attention, back
// to [B, T, C]): the same output, and one d(qkv) equal to the gradient the split path gives.
TEST_P(CausalAttentionPath, QkvMatchesSplitComposition) {
  const int64_t B = 2, T = 6, H = 3, D = 4, C = H * D;
  Tensor w = uniform({B, T, C}, -1, 1, {.dtype = DType::f64}, nullptr);  // weights of the loss
  Tensor a = uniform({B, T, 3 * C}, -1, 1, {.dtype = DType::f64}, nullptr).requires_grad_(true);
  Tensor b = a.detach().clone().requires_grad_(true);
  Tensor ya = causal_attention_qkv(a, H);
  ASSERT_EQ(ya.shape(), Shape({B, T, C}));
  std::vector<Tensor> parts = split(b, C, 2);
  auto heads = [&](const Tensor& t) { return t.reshape({B, T, H, D}).transpose(1, 2); };
  Tensor yb = causal_attention(heads(parts[0]), heads(parts[1]), heads(parts[2])).transpose(1, 2).reshape({B, T, C});
  const auto va = ya.to_vector<double>(), vb = yb.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 1e-14) << i;
  sum(ya * w).backward();
  sum(yb * w).backward();
  ASSERT_TRUE(a.grad().defined());
  ASSERT_EQ(a.grad().shape(), Shape({B, T, 3 * C}));
  const auto ga = a.grad().to_vector<double>(), gb = b.grad().to_vector<double>();
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-14) << i;
  // The first head's output at t = 0 is v's first head at t = 0 (it attends to itself only).
  for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(va[d], a.to_vector<double>()[2 * C + d], 1e-14);
}

TEST_P(CausalAttentionPath, QkvGradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return causal_attention_qkv(in[0], 2); },
                   {rand_input({2, 3, 12}, 11)});
}

TEST(CausalAttentionQkv, BadInput) {
  expect_error([] { causal_attention_qkv(zeros({2, 3, 12}), 0); }, ErrorCode::InvalidArgument,
               {"causal_attention_qkv", "n_head = 0", "f32[2, 3, 12]"});
  expect_error([] { causal_attention_qkv(zeros({2, 3, 12}), 3); }, ErrorCode::InvalidArgument,
               {"causal_attention_qkv", "[B, T, 3C]", "n_head = 3"});
  expect_error([] { causal_attention_qkv(zeros({3, 12}), 2); }, ErrorCode::InvalidArgument,
               {"causal_attention_qkv", "f32[3, 12]"});
  expect_error([] { causal_attention_qkv(zeros({2, 3, 12}, {.dtype = DType::i64}), 2); }, ErrorCode::InvalidArgument,
               {"causal_attention_qkv", "qkv"});
}
