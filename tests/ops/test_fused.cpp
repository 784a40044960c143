// Fused ops on the CPU: gradient checks in f64 and equality with the unfused composition in f32;
// the CPU flash-attention kernels against the reference attention.
#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "kernels/flash_attention.h"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;
using kirzl::testing::randn_t;

namespace {

void expect_close(const Tensor& a, const Tensor& b, double tol, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  auto av = a.to(DType::f64).contiguous().to_vector<double>();
  auto bv = b.to(DType::f64).contiguous().to_vector<double>();
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < av.size(); ++i) {
    const double e = std::abs(av[i] - bv[i]) / (1 + std::abs(bv[i]));
    if (!(e <= worst)) worst = e, at = static_cast<int64_t>(i);
  }
  EXPECT_LE(worst, tol) << what << ": largest relative error at " << at;
}

// Gradients of sum(f(inputs) * w) for a fixed random w, through autograd.
std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                             uint64_t seed) {
  std::vector<Tensor> leaves;
  for (auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_());
  Tensor out = f(leaves);
  Tensor w = randn_t(out.shape(), seed, out.dtype());
  sum(mul(out, w)).backward();
  std::vector<Tensor> g;
  for (auto& t : leaves) g.push_back(t.grad());
  return g;
}

// Bitwise-equal values (compared through f64, which holds every f32/bf16 value exactly).
bool equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         a.to(DType::f64).contiguous().to_vector<double>() == b.to(DType::f64).contiguous().to_vector<double>();
}

Tensor targets_with_ignored(int64_t n, int64_t v, uint64_t seed) {
  Generator gen(seed);
  Tensor t = randint(0, v, {n}, {.dtype = DType::i64}, &gen);
  auto tv = t.to_vector<int64_t>();
  for (int64_t i = 1; i < n; i += 3) tv[i] = -100;
  return from_vector<int64_t>(tv, {n});
}

}  // namespace

// ---- residual_layer_norm ----

TEST(ResidualLayerNorm, Gradcheck) {
  Tensor x = rand_input({3, 2, 5}, 1), r = rand_input({3, 2, 5}, 2);
  Tensor w = rand_input({5}, 3, 0.5, 1.5), b = rand_input({5}, 4);
  // Both outputs feed the checked function, so both gradient paths are checked.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) {
    auto r2 = residual_layer_norm(in[0], in[1], in[2], in[3], 1e-5);
    return add(mul(r2.sum, 0.3), r2.normed);
  }, {x, r, w, b});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) {
    return residual_layer_norm(in[0], in[1], Tensor(), Tensor(), 1e-3).normed;
  }, {x, r});
}

TEST(ResidualLayerNorm, EqualsUnfusedF32) {
  for (int64_t n : {1, 17, 768}) {
    Tensor x = randn_t({7, n}, 10, DType::f32), r = randn_t({7, n}, 11, DType::f32);
    Tensor w = randn_t({n}, 12, DType::f32), b = randn_t({n}, 13, DType::f32);
    auto fused = [](const std::vector<Tensor>& in) {
      auto o = residual_layer_norm(in[0], in[1], in[2], in[3]);
      return add(mul(o.sum, 0.5), o.normed);
    };
    auto plain = [n](const std::vector<Tensor>& in) {
      Tensor s = add(in[0], in[1]);
      return add(mul(s, 0.5), layer_norm(s, {n}, in[2], in[3]));
    };
    auto o = residual_layer_norm(x, r, w, b);
    EXPECT_TRUE(equal(o.sum, add(x, r))) << "sum must be exactly x + residual";
    expect_close(o.normed, layer_norm(add(x, r), {n}, w, b), 1e-5, "normed");
    auto gf = grads_of(fused, {x, r, w, b}, 5), gp = grads_of(plain, {x, r, w, b}, 5);
    for (size_t i = 0; i < gf.size(); ++i) expect_close(gf[i], gp[i], 2e-5, "gradient");
  }
}

TEST(ResidualLayerNorm, StridedInputsAndBf16) {
  Tensor x = randn_t({6, 16}, 20, DType::f32).t(), r = randn_t({16, 6}, 21, DType::f32);
  auto o = residual_layer_norm(x, r, Tensor(), Tensor());
  expect_close(o.normed, layer_norm(add(x, r), {6}), 1e-5, "strided");
  Tensor xb = x.to(DType::bf16), rb = r.to(DType::bf16);
  auto ob = residual_layer_norm(xb, rb, Tensor(), Tensor());
  EXPECT_TRUE(equal(ob.sum, add(xb, rb)));
  expect_close(ob.normed, layer_norm(add(xb, rb), {6}), 1e-2, "bf16");
}

TEST(ResidualLayerNorm, BadInput) {
  Tensor x = zeros({2, 4}), r3 = zeros({2, 3}), w = zeros({3});
  EXPECT_KIRZL_ERROR(residual_layer_norm(x, r3, Tensor(), Tensor()), ErrorCode::InvalidArgument, "residual_layer_norm",
                     "shape");
  EXPECT_KIRZL_ERROR(residual_layer_norm(x, x, w, Tensor()), ErrorCode::InvalidArgument, "[4]");
  EXPECT_KIRZL_ERROR(residual_layer_norm(x, x.to(DType::f64), Tensor(), Tensor()), ErrorCode::InvalidArgument, "dtype");
}

// ---- bias_gelu ----

TEST(BiasGelu, Gradcheck) {
  Tensor x = rand_input({4, 3, 7}, 30, -3, 3), b = rand_input({7}, 31);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1]); }, {x, b});
}

TEST(BiasGelu, EqualsUnfusedF32) {
  for (int64_t n : {1, 3, 257}) {
    Tensor x = mul(randn_t({5, n}, 32, DType::f32), 3.0), b = randn_t({n}, 33, DType::f32);
    auto fused = [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1]); };
    auto plain = [](const std::vector<Tensor>& in) { return gelu(add(in[0], in[1]), GeluApproximation::Tanh); };
    expect_close(fused({x, b}), plain({x, b}), 1e-6, "forward");
    auto gf = grads_of(fused, {x, b}, 6), gp = grads_of(plain, {x, b}, 6);
    expect_close(gf[0], gp[0], 1e-5, "d x");
    expect_close(gf[1], gp[1], 1e-5, "d bias");
  }
  Tensor xb = randn_t({9, 8}, 34, DType::bf16), bb = randn_t({8}, 35, DType::bf16);
  EXPECT_TRUE(equal(bias_gelu(xb, bb), gelu(add(xb, bb), GeluApproximation::Tanh)))
      << "bf16: h is rounded before the GELU like the unfused ops";
}

TEST(BiasGelu, BadInput) {
  EXPECT_KIRZL_ERROR(bias_gelu(zeros({2, 4}), zeros({3})), ErrorCode::InvalidArgument, "bias_gelu", "[4]");
  EXPECT_KIRZL_ERROR(bias_gelu(zeros({2, 4}), zeros({4}, {.dtype = DType::f64})), ErrorCode::InvalidArgument, "dtype");
}

// ---- linear_bias_gelu and gelu_mlp (on the CPU: the reference composition) ----

namespace {
Tensor plain_linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  return gelu(add(matmul(x, w.t()), b), GeluApproximation::Tanh);
}
}  // namespace

TEST(LinearBiasGelu, Gradcheck) {
  Tensor x = rand_input({2, 3, 5}, 40, -2, 2), w = rand_input({6, 5}, 41), b = rand_input({6}, 42);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return linear_bias_gelu(in[0], in[1], in[2]); }, {x, w, b});
}

TEST(LinearBiasGelu, EqualsUnfusedF32) {
  Tensor x = randn_t({4, 3, 16}, 43, DType::f32), w = randn_t({24, 16}, 44, DType::f32), b = randn_t({24}, 45, DType::f32);
  auto fused = [](const std::vector<Tensor>& in) { return linear_bias_gelu(in[0], in[1], in[2]); };
  auto plain = [](const std::vector<Tensor>& in) { return plain_linear_gelu(in[0], in[1], in[2]); };
  Tensor y = fused({x, w, b});
  EXPECT_EQ(y.shape(), (Shape{4, 3, 24}));
  expect_close(y, plain({x, w, b}), 1e-5, "forward");
  auto gf = grads_of(fused, {x, w, b}, 7), gp = grads_of(plain, {x, w, b}, 7);
  expect_close(gf[0], gp[0], 1e-5, "d x");
  expect_close(gf[1], gp[1], 1e-5, "d weight");
  expect_close(gf[2], gp[2], 1e-5, "d bias");
}

TEST(LinearBiasGelu, BadInput) {
  EXPECT_KIRZL_ERROR(linear_bias_gelu(zeros({2, 4}), zeros({3, 5}), zeros({3})), ErrorCode::InvalidArgument,
                     "linear_bias_gelu", "[N, K]");
  EXPECT_KIRZL_ERROR(linear_bias_gelu(zeros({2, 4}), zeros({3, 4}), zeros({4})), ErrorCode::InvalidArgument,
                     "linear_bias_gelu", "bias [3]");
  EXPECT_KIRZL_ERROR(linear_bias_gelu(zeros({2, 4}), zeros({3, 4}), zeros({3}, {.dtype = DType::f64})),
                     ErrorCode::InvalidArgument, "dtype");
  EXPECT_KIRZL_ERROR(linear_bias_gelu(zeros({2, 4}), zeros({3, 4}), Tensor()), ErrorCode::InvalidArgument, "bias");
}

TEST(GeluMlp, Gradcheck) {
  Tensor x = rand_input({3, 4}, 46, -2, 2), fw = rand_input({6, 4}, 47), fb = rand_input({6}, 48);
  Tensor pw = rand_input({5, 6}, 49), pb = rand_input({5}, 50);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) { return gelu_mlp(in[0], in[1], in[2], in[3], in[4]); }, {x, fw, fb, pw, pb});
}

TEST(GeluMlp, EqualsUnfusedF32) {
  Tensor x = randn_t({2, 5, 8}, 51, DType::f32), fw = randn_t({32, 8}, 52, DType::f32), fb = randn_t({32}, 53, DType::f32);
  Tensor pw = randn_t({8, 32}, 54, DType::f32), pb = randn_t({8}, 55, DType::f32);
  auto fused = [](const std::vector<Tensor>& in) { return gelu_mlp(in[0], in[1], in[2], in[3], in[4]); };
  auto plain = [](const std::vector<Tensor>& in) {
    return add(matmul(plain_linear_gelu(in[0], in[1], in[2]), in[3].t()), in[4]);
  };
  Tensor y = fused({x, fw, fb, pw, pb});
  EXPECT_EQ(y.shape(), (Shape{2, 5, 8}));
  expect_close(y, plain({x, fw, fb, pw, pb}), 1e-5, "forward");
  auto gf = grads_of(fused, {x, fw, fb, pw, pb}, 8), gp = grads_of(plain, {x, fw, fb, pw, pb}, 8);
  const char* names[] = {"d x", "d fc_weight", "d fc_bias", "d proj_weight", "d proj_bias"};
  for (size_t i = 0; i < 5; ++i) expect_close(gf[i], gp[i], 1e-5, names[i]);
}

TEST(GeluMlp, BadInput) {
  Tensor x = zeros({2, 4}), fw = zeros({6, 4}), fb = zeros({6});
  EXPECT_KIRZL_ERROR(gelu_mlp(x, fw, fb, zeros({4, 5}), zeros({4})), ErrorCode::InvalidArgument, "gelu_mlp",
                     "proj_weight [C_out, 6]");
  EXPECT_KIRZL_ERROR(gelu_mlp(x, fw, fb, zeros({4, 6}), zeros({5})), ErrorCode::InvalidArgument, "gelu_mlp",
                     "proj_bias [4]");
  EXPECT_KIRZL_ERROR(gelu_mlp(x, fw, zeros({5}), zeros({4, 6}), zeros({4})), ErrorCode::InvalidArgument,
                     "fc_bias [6]");
  EXPECT_KIRZL_ERROR(gelu_mlp(x, fw, fb, zeros({4, 6}, {.dtype = DType::f64}), zeros({4})),
                     ErrorCode::InvalidArgument, "dtype");
}

// ---- linear_cross_entropy ----

TEST(LinearCrossEntropy, Gradcheck) {
  Tensor h = rand_input({6, 5}, 40), w = rand_input({11, 5}, 41);
  Tensor t = targets_with_ignored(6, 11, 42);
  for (int64_t chunk : {0, 4}) {
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) {
      return linear_cross_entropy(in[0], in[1], t, {.chunk_rows = chunk});
    }, {h, w});
  }
}

TEST(LinearCrossEntropy, EqualsUnfusedF32) {
  const int64_t n = 37, c = 24, v = 101;
  Tensor h = randn_t({n, c}, 43, DType::f32), w = mul(randn_t({v, c}, 44, DType::f32), 0.3);
  Tensor t = targets_with_ignored(n, v, 45);
  auto plain = [&](const std::vector<Tensor>& in) { return cross_entropy(matmul(in[0], in[1].t()), t); };
  auto gp = grads_of(plain, {h, w}, 7);
  for (int64_t chunk : {0, 1, 8, 37, 100}) {
    auto fused = [&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], t, {.chunk_rows = chunk}); };
    expect_close(fused({h, w}), plain({h, w}), 1e-6, "loss");
    auto gf = grads_of(fused, {h, w}, 7);
    expect_close(gf[0], gp[0], 1e-5, "d hidden");
    expect_close(gf[1], gp[1], 1e-5, "d weight");
  }
  // Strided hidden (a transposed view) and i32 targets.
  Tensor ht = h.t().contiguous().t();
  expect_close(linear_cross_entropy(ht, w, t.to(DType::i32)), plain({h, w}), 1e-6, "strided");
}

TEST(LinearCrossEntropy, LossKeepsF32ForBf16) {
  Tensor h = randn_t({8, 16}, 46, DType::bf16), w = randn_t({50, 16}, 47, DType::bf16);
  Tensor t = targets_with_ignored(8, 50, 48);
  Tensor l = linear_cross_entropy(h, w, t);
  EXPECT_EQ(l.dtype(), DType::f32);
  Tensor ref = cross_entropy(matmul(h, w.t()).to(DType::f32), t);
  EXPECT_NEAR(l.item(), ref.item(), 1e-4);
}

TEST(LinearCrossEntropy, AllIgnoredIsNanWithZeroGradient) {
  Tensor h = randn_t({3, 4}, 49, DType::f64).requires_grad_(), w = randn_t({5, 4}, 50, DType::f64).requires_grad_();
  Tensor t = full({3}, -100, {.dtype = DType::i64});
  Tensor l = linear_cross_entropy(h, w, t);
  EXPECT_TRUE(std::isnan(l.item()));
  l.backward();
  EXPECT_TRUE(equal(h.grad(), zeros_like(h)));
  EXPECT_TRUE(equal(w.grad(), zeros_like(w)));
}

// num_classes: weight padded with extra rows (large values, so that a padded logit that reached
// the softmax would change the loss) gives the loss and gradients of the unpadded weight, and the
// padding rows an exactly zero gradient -- unchunked, chunked, f32 and f64.
TEST(LinearCrossEntropy, NumClassesLeavesThePaddingRowsOut) {
  const int64_t n = 19, c = 12, v = 37, vp = 48;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor h = randn_t({n, c}, 60, dt), w = mul(randn_t({v, c}, 61, dt), 0.3);
    Tensor padded = cat({w, mul(randn_t({vp - v, c}, 62, dt), 5.0)}, 0);
    Tensor t = targets_with_ignored(n, v, 63);
    auto plain = [&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], t); };
    auto gp = grads_of(plain, {h, w}, 8);
    for (int64_t chunk : {0, 5}) {
      auto fused = [&](const std::vector<Tensor>& in) {
        return linear_cross_entropy(in[0], in[1], t, {.chunk_rows = chunk, .num_classes = v});
      };
      expect_close(fused({h, padded}), plain({h, w}), 1e-6, "loss");
      auto gf = grads_of(fused, {h, padded}, 8);
      expect_close(gf[0], gp[0], 1e-6, "d hidden");
      expect_close(gf[1].narrow(0, 0, v), gp[1], 1e-6, "d weight, true rows");
      EXPECT_TRUE(equal(gf[1].narrow(0, v, vp - v), zeros({vp - v, c}, {.dtype = dt}))) << "padding rows' gradient";
    }
    // num_classes == V is the plain op.
    expect_close(linear_cross_entropy(h, w, t, {.num_classes = v}), plain({h, w}), 0.0, "num_classes = V");
  }
  Tensor h = zeros({2, 4}), w = zeros({6, 4});
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, from_vector<int64_t>({0, 4}, {2}), {.num_classes = 4}),
                     ErrorCode::InvalidArgument, "target 4", "4 classes");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, from_vector<int64_t>({0, 1}, {2}), {.num_classes = 7}),
                     ErrorCode::InvalidArgument, "num_classes", "V = 6");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, from_vector<int64_t>({0, 1}, {2}), {.num_classes = -1}),
                     ErrorCode::InvalidArgument, "num_classes");
}

TEST(LinearCrossEntropy, BadInputAndSecondBackward) {
  Tensor h = zeros({3, 4}), w = zeros({5, 4});
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, from_vector<int64_t>({0, 5, 1}, {3})), ErrorCode::InvalidArgument,
                     "target 5", "row 1");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, zeros({5, 3}), zeros({3}, {.dtype = DType::i64})),
                     ErrorCode::InvalidArgument, "[V, C]");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, zeros({2}, {.dtype = DType::i64})), ErrorCode::InvalidArgument, "[N]");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, zeros({3})), ErrorCode::InvalidArgument, "i32 or i64");
  Tensor hg = randn_t({3, 4}, 51, DType::f32).requires_grad_();
  Tensor l = linear_cross_entropy(hg, w, from_vector<int64_t>({0, 1, 2}, {3}));
  autograd::backward({l}, {}, /*retain_graph=*/true);
  EXPECT_KIRZL_ERROR(autograd::backward({l}, {}, true), ErrorCode::InvalidArgument, "twice");
}

// ---- CPU flash-attention kernels against the reference attention ----

TEST(FlashAttentionCpu, MatchesReferenceForwardAndBackward) {
  // causal_attention on the CPU runs these same kernels by default (Note [attention path]).
  kirzl::testing::ScopedEnv reference("KIRZL_ATTENTION", std::string("reference"));
  for (int64_t T : {1, 17, 70, 131}) {
    const int64_t B = 2, H = 3, D = 8;
    // q, k, v split from one [B, T, 3 H D] projection and transposed: strided views.
    Tensor qkv = randn_t({B, T, 3 * H * D}, 60 + T, DType::f32);
    auto view = [&](int64_t i) { return qkv.slice(2, i * H * D, (i + 1) * H * D).reshape({B, T, H, D}).transpose(1, 2); };
    Tensor q = view(0), k = view(1), v = view(2);
    ASSERT_FALSE(q.is_contiguous());
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    Tensor out = empty({B, H, T, D}), lse = empty({B, H, T});
    kernels::flash_attention_forward.kernel(DeviceType::CPU)(out, lse, q, k, v, scale);

    Tensor qr = q.contiguous().requires_grad_(), kr = k.contiguous().requires_grad_(), vr = v.contiguous().requires_grad_();
    Tensor ref = causal_attention(qr, kr, vr);
    expect_close(out, ref, 1e-6, "forward");
    // lse: log of the sum over j <= i of exp(q_i . k_j * scale).
    Tensor s = mul(matmul(q, k.transpose(2, 3)), scale);
    auto sv = s.contiguous().to_vector<float>(), lv = lse.to_vector<float>();
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t i = 0; i < T; ++i) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += std::exp(static_cast<double>(sv[(bh * T + i) * T + j]));
        ASSERT_NEAR(lv[bh * T + i], std::log(acc), 1e-5);
      }

    Tensor g = randn_t({B, H, T, D}, 70 + T, DType::f32);
    sum(mul(ref, g)).backward();
    Tensor gq = empty({B, H, T, D}), gk = empty({B, H, T, D}), gv = empty({B, H, T, D});
    kernels::flash_attention_backward.kernel(DeviceType::CPU)(gq, gk, gv, g, out, lse, q, k, v, scale);
    expect_close(gq, qr.grad(), 2e-5, "d q");
    expect_close(gk, kr.grad(), 2e-5, "d k");
    expect_close(gv, vr.grad(), 2e-5, "d v");
  }
}

// The kernels' output contract (flash_attention.h): out, gq, gk, gv may be strided views with unit
// last-dim stride, e.g. the head view of a [B, T, C] output and the three head views of one
// d(qkv), as causal_attention_qkv passes them on CUDA. Every element is written (the buffers start
// as NaN), with the same values as contiguous outputs.
TEST(FlashAttentionCpu, WritesStridedOutputsInPlace) {
  const int64_t B = 2, H = 3, T = 19, D = 8, C = H * D;
  Tensor qkv = randn_t({B, T, 3 * C}, 81, DType::f32);
  auto heads = [&](const Tensor& x, int64_t parts, int64_t i) {
    return x.view({B, T, parts, H, D}).select(2, i).transpose(1, 2);
  };
  Tensor q = heads(qkv, 3, 0), k = heads(qkv, 3, 1), v = heads(qkv, 3, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Tensor out = empty({B, H, T, D}), lse = empty({B, H, T});
  kernels::flash_attention_forward.kernel(DeviceType::CPU)(out, lse, q, k, v, scale);
  Tensor y = full({B, T, C}, std::nan(""));
  Tensor out_view = heads(y, 1, 0), lse2 = empty({B, H, T});
  ASSERT_FALSE(out_view.is_contiguous());
  kernels::flash_attention_forward.kernel(DeviceType::CPU)(out_view, lse2, q, k, v, scale);
  EXPECT_EQ(y.to_vector<float>(), out.transpose(1, 2).contiguous().reshape({B, T, C}).to_vector<float>());

  Tensor g = randn_t({B, H, T, D}, 82, DType::f32);
  Tensor gq = empty({B, H, T, D}), gk = empty({B, H, T, D}), gv = empty({B, H, T, D});
  kernels::flash_attention_backward.kernel(DeviceType::CPU)(gq, gk, gv, g, out, lse, q, k, v, scale);
  Tensor dqkv = full({B, T, 3 * C}, std::nan(""));
  Tensor vq = heads(dqkv, 3, 0), vk = heads(dqkv, 3, 1), vv = heads(dqkv, 3, 2);
  kernels::flash_attention_backward.kernel(DeviceType::CPU)(vq, vk, vv, g, out_view, lse, q, k, v, scale);
  auto as_btc = [&](const Tensor& t) { return t.transpose(1, 2).contiguous().reshape({B, T, C}); };
  EXPECT_EQ(dqkv.to_vector<float>(), cat({as_btc(gq), as_btc(gk), as_btc(gv)}, 2).to_vector<float>());
}
