// CUDA GEMM (cuBLASLt) against a float64 CPU reference: all transpose combinations and odd sizes,
// every floating dtype, alpha/beta, TF32, the bias epilogue, batches (collapsible, broadcast and
// not), non-contiguous operands and outputs, ops::matmul / bmm / linear with autograd, errors.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>
#include <thread>
#include <tuple>
#include <vector>

#include "kernels/gemm.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"
#include "support/scaled_compare.hpp"

using namespace kirzl;
using kirzl::testing::close_scaled;
using kirzl::testing::non_contiguous_copy;
using kirzl::testing::poison;

namespace {

const Device kCuda = Device::cuda(0);

// Random values in [-1, 1], already rounded to dt (on the CPU): GPU and reference see the same.
Tensor rnd(const Shape& s, DType dt) { return uniform(s, -1.0, 1.0, {.dtype = DType::f64}).to(dt); }

// Error bound relative to Σ|a||b| (see support/scaled_compare.hpp). f32 without TF32 must be far
// below TF32's ~5e-4 input rounding; 16-bit results are rounded once to 8 / 11 mantissa bits.
double rtol_for(DType dt) {
  switch (dt) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    default: return 1e-2;
  }
}

struct Reference {
  Tensor value, scale;
};

// alpha op(a) op(b) + beta c0 in f64 on the CPU, with Σ|terms| as the error scale.
Reference reference(const Tensor& a, const Tensor& b, bool ta, bool tb, double alpha, double beta, const Tensor& c0,
                    const Shape& out_shape) {
  Tensor a64 = a.to(Device::cpu()).to(DType::f64), b64 = b.to(Device::cpu()).to(DType::f64);
  const bool use_c = c0.defined() && beta != 0.0;
  Tensor ref = use_c ? c0.to(Device::cpu()).to(DType::f64).contiguous().clone() : empty(out_shape, {.dtype = DType::f64});
  kernels::gemm(ref, a64, b64, ta, tb, alpha, beta);
  Tensor sc = use_c ? abs(c0.to(Device::cpu()).to(DType::f64)).contiguous().clone() : empty(out_shape, {.dtype = DType::f64});
  kernels::gemm(sc, abs(a64), abs(b64), ta, tb, std::abs(alpha), std::abs(beta));
  return {ref, sc};
}

struct Size {
  int64_t M, N, K;
};
const std::vector<Size> kSizes = {{1, 1, 1}, {3, 5, 7}, {17, 257, 33}, {1000, 1, 999}, {512, 768, 3072}};

// The kernel called directly with a poisoned output (beta = 0 must ignore the NaNs).
void check_kernel(Size s, bool ta, bool tb, DType dt, double alpha = 1.0, double beta = 0.0, double rtol = -1) {
  SCOPED_TRACE(::testing::Message() << "M=" << s.M << " N=" << s.N << " K=" << s.K << " trans_a=" << ta
                                    << " trans_b=" << tb << " " << dtype_name(dt) << " alpha=" << alpha
                                    << " beta=" << beta);
  Tensor a = rnd(ta ? Shape{s.K, s.M} : Shape{s.M, s.K}, dt);
  Tensor b = rnd(tb ? Shape{s.N, s.K} : Shape{s.K, s.N}, dt);
  Tensor c0 = rnd({s.M, s.N}, dt);
  Tensor out = beta != 0.0 ? c0.to(kCuda) : empty({s.M, s.N}, {.dtype = dt, .device = kCuda});
  if (beta == 0.0) poison(out);
  kernels::gemm(out, a.to(kCuda), b.to(kCuda), ta, tb, alpha, beta);
  Reference r = reference(a, b, ta, tb, alpha, beta, c0, {s.M, s.N});
  EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol > 0 ? rtol : rtol_for(dt)));
}

class GemmDTypeTest : public ::testing::TestWithParam<DType> {};

TEST_P(GemmDTypeTest, AllTransposesAndSizesAgainstCpu) {
  KIRZL_REQUIRE_GPU();
  manual_seed(1);
  for (Size s : kSizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) check_kernel(s, ta, tb, GetParam());
}

TEST_P(GemmDTypeTest, AlphaBetaAccumulateIntoOut) {
  KIRZL_REQUIRE_GPU();
  manual_seed(2);
  for (Size s : {Size{3, 5, 7}, Size{17, 257, 33}, Size{64, 96, 130}})
    for (auto [alpha, beta] : {std::pair{0.5, 1.0}, std::pair{-1.5, 0.25}, std::pair{2.0, -1.0}, std::pair{0.0, 1.5}})
      check_kernel(s, false, true, GetParam(), alpha, beta);
}

INSTANTIATE_TEST_SUITE_P(Floating, GemmDTypeTest, ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(GemmCuda, EmptyInnerDimensionGivesBetaTimesOut) {
  KIRZL_REQUIRE_GPU();
  Tensor a = empty({4, 0}, {.device = kCuda}), b = empty({0, 3}, {.device = kCuda});
  Tensor out = empty({4, 3}, {.device = kCuda});
  poison(out);
  kernels::gemm(out, a, b, false, false, 1.0, 0.0);
  EXPECT_TRUE(kirzl::testing::all_close(out, zeros({4, 3})));
  Tensor c0 = rnd({4, 3}, DType::f32);
  Tensor out2 = c0.to(kCuda);
  kernels::gemm(out2, a, b, false, false, 1.0, 0.5);
  EXPECT_TRUE(kirzl::testing::all_close(out2, c0 * 0.5));
}

TEST(GemmCuda, Tf32OnlyInsideTheGuard) {
  KIRZL_REQUIRE_GPU();
  manual_seed(3);
  const Size s{512, 768, 3072};
  Tensor a = rnd({s.M, s.K}, DType::f32), b = rnd({s.K, s.N}, DType::f32);
  Tensor ac = a.to(kCuda), bc = b.to(kCuda);
  Reference r = reference(a, b, false, false, 1.0, 0.0, Tensor(), {s.M, s.N});
  Tensor exact = empty({s.M, s.N}, {.device = kCuda}), fast = empty({s.M, s.N}, {.device = kCuda});
  kernels::gemm(exact, ac, bc, false, false, 1.0, 0.0);
  {
    AllowTF32Guard tf32;
    kernels::gemm(fast, ac, bc, false, false, 1.0, 0.0);
  }
  EXPECT_TRUE(close_scaled(exact, r.value, r.scale, 1e-5));
  EXPECT_TRUE(close_scaled(fast, r.value, r.scale, 1e-2));
  // TF32 rounds the inputs to 10 mantissa bits: on these inputs the result must differ somewhere,
  // or the guard had no effect.
  auto e = exact.to(Device::cpu()).to_vector<float>(), f = fast.to(Device::cpu()).to_vector<float>();
  EXPECT_NE(e, f) << "AllowTF32Guard did not switch cuBLASLt to TF32";
  // Small K: TF32's input rounding (~5e-4 relative) would exceed the exact-f32 bound here.
  for (bool ta : {false, true}) check_kernel({64, 64, 33}, ta, false, DType::f32, 1.0, 0.0, 1e-5);
}

TEST(GemmCuda, Tf32GuardIsScopedAndThreadLocal) {
  // No GPU needed: only the flag's semantics.
  EXPECT_FALSE(tf32_allowed());
  {
    AllowTF32Guard outer;
    EXPECT_TRUE(tf32_allowed());
    {
      AllowTF32Guard inner(false);
      EXPECT_FALSE(tf32_allowed());
    }
    EXPECT_TRUE(tf32_allowed());
    bool other_thread = true;
    std::thread([&] { other_thread = tf32_allowed(); }).join();
    EXPECT_FALSE(other_thread);
  }
  EXPECT_FALSE(tf32_allowed());
}

// ---- batches ----

void check_batched(const Tensor& a, const Tensor& b, bool ta, bool tb, DType dt) {
  Shape os = a.shape();
  os[os.size() - 2] = ta ? a.size(-1) : a.size(-2);
  os[os.size() - 1] = tb ? b.size(-2) : b.size(-1);
  Tensor out = empty(os, {.dtype = dt, .device = kCuda});
  poison(out);
  kernels::gemm(out, a.to(kCuda), b.to(kCuda), ta, tb, 1.0, 0.0);
  Reference r = reference(a, b, ta, tb, 1.0, 0.0, Tensor(), os);
  EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt))) << "a " << a.describe() << " b " << b.describe();
}

TEST(GemmCuda, StridedBatches) {
  KIRZL_REQUIRE_GPU();
  manual_seed(4);
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_batched(rnd(ta ? Shape{5, 7, 3} : Shape{5, 3, 7}, dt), rnd(tb ? Shape{5, 11, 7} : Shape{5, 7, 11}, dt),
                      ta, tb, dt);
        check_batched(rnd(ta ? Shape{2, 3, 65, 17} : Shape{2, 3, 17, 65}, dt),
                      rnd(tb ? Shape{2, 3, 33, 65} : Shape{2, 3, 65, 33}, dt), ta, tb, dt);
      }
  }
}

TEST(GemmCuda, BroadcastAndNonCollapsibleBatches) {
  KIRZL_REQUIRE_GPU();
  manual_seed(5);
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = rnd({2, 3, 9, 13}, dt);
    // Every batch dim expanded on the device (batch stride 0): one cuBLASLt call re-reading b.
    Tensor b_dev = rnd({1, 1, 13, 6}, dt);
    Tensor out = empty({2, 3, 9, 6}, {.dtype = dt, .device = kCuda});
    poison(out);
    kernels::gemm(out, a.to(kCuda), b_dev.to(kCuda).expand({2, 3, 13, 6}), false, false, 1.0, 0.0);
    Reference r = reference(a, b_dev.expand({2, 3, 13, 6}), false, false, 1.0, 0.0, Tensor(), {2, 3, 9, 6});
    EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt)));
    // Only the inner batch dim expanded: no single batch stride, made contiguous first.
    Tensor b_dev2 = rnd({2, 1, 13, 6}, dt);
    poison(out);
    kernels::gemm(out, a.to(kCuda), b_dev2.to(kCuda).expand({2, 3, 13, 6}), false, false, 1.0, 0.0);
    r = reference(a, b_dev2.expand({2, 3, 13, 6}), false, false, 1.0, 0.0, Tensor(), {2, 3, 9, 6});
    EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt)));
    // Permuted batch dims (strides out of order): made contiguous first.
    Tensor a_perm_dev = rnd({3, 2, 9, 13}, dt);
    Tensor bb = rnd({2, 3, 13, 6}, dt);
    poison(out);
    kernels::gemm(out, a_perm_dev.to(kCuda).permute({1, 0, 2, 3}), bb.to(kCuda), false, false, 1.0, 0.0);
    r = reference(a_perm_dev.permute({1, 0, 2, 3}), bb, false, false, 1.0, 0.0, Tensor(), {2, 3, 9, 6});
    EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt)));
  }
}

// ---- non-contiguous operands and outputs ----

TEST(GemmCuda, NonContiguousOperandsAndOutputs) {
  KIRZL_REQUIRE_GPU();
  manual_seed(6);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const int64_t M = 37, N = 29, K = 41;
    Tensor a = rnd({M, K}, dt), b = rnd({K, N}, dt);
    Reference r = reference(a, b, false, false, 1.0, 0.0, Tensor(), {M, N});
    const double rtol = rtol_for(dt);
    auto run = [&](const Tensor& ad, const Tensor& bd, Tensor out) {
      poison(out);
      kernels::gemm(out, ad, bd, false, false, 1.0, 0.0);
      return out;
    };
    Tensor ad = a.to(kCuda), bd = b.to(kCuda);
    // Every other element of the last dim: neither stride is 1, copied first.
    EXPECT_TRUE(close_scaled(run(non_contiguous_copy(ad), bd, empty({M, N}, {.dtype = dt, .device = kCuda})), r.value,
                             r.scale, rtol));
    EXPECT_TRUE(close_scaled(run(ad, non_contiguous_copy(bd), empty({M, N}, {.dtype = dt, .device = kCuda})), r.value,
                             r.scale, rtol));
    // Column-major operands (transposed views) with trans = false: used in place.
    Tensor a_cm = a.t().contiguous().to(kCuda).t(), b_cm = b.t().contiguous().to(kCuda).t();
    EXPECT_TRUE(close_scaled(run(a_cm, b_cm, empty({M, N}, {.dtype = dt, .device = kCuda})), r.value, r.scale, rtol));
    // Row slices of wider matrices: leading dim > cols and a pointer offset by one element
    // (less aligned: the algorithm cache must not reuse an algorithm chosen for aligned data).
    Tensor a_wide = empty({M, K + 5}, {.dtype = dt, .device = kCuda});
    poison(a_wide);
    Tensor a_slice = a_wide.slice(1, 1, K + 1);
    a_slice.copy_(ad);
    Tensor b_wide = empty({K, N + 3}, {.dtype = dt, .device = kCuda});
    poison(b_wide);
    Tensor b_slice = b_wide.slice(1, 3, N + 3);
    b_slice.copy_(bd);
    EXPECT_TRUE(close_scaled(run(a_slice, b_slice, empty({M, N}, {.dtype = dt, .device = kCuda})), r.value, r.scale,
                             rtol));
    // Outputs: a column-major view, a strided view and a row slice of a wider buffer.
    Tensor out_cm = empty({N, M}, {.dtype = dt, .device = kCuda}).t();
    EXPECT_TRUE(close_scaled(run(ad, bd, out_cm), r.value, r.scale, rtol));
    Tensor out_strided = empty({M, 2 * N}, {.dtype = dt, .device = kCuda}).slice(1, 0, 2 * N, 2);
    EXPECT_TRUE(close_scaled(run(ad, bd, out_strided), r.value, r.scale, rtol));
    Tensor out_wide = empty({M, N + 7}, {.dtype = dt, .device = kCuda});
    poison(out_wide);
    Tensor out_slice = out_wide.slice(1, 2, N + 2);
    EXPECT_TRUE(close_scaled(run(ad, bd, out_slice), r.value, r.scale, rtol));
    // The columns around the slice are untouched (still NaN).
    Tensor left = out_wide.slice(1, 0, 2).to(Device::cpu()).to(DType::f64);
    for (double v : left.contiguous().to_vector<double>()) EXPECT_TRUE(std::isnan(v));
    // Non-contiguous output with beta != 0: its prior contents take part.
    Tensor c0 = rnd({M, N}, dt);
    Tensor out_b = empty({M, 2 * N}, {.dtype = dt, .device = kCuda}).slice(1, 0, 2 * N, 2);
    out_b.copy_(c0.to(kCuda));
    kernels::gemm(out_b, ad, bd, false, false, 1.0, 1.0);
    Reference rb = reference(a, b, false, false, 1.0, 1.0, c0, {M, N});
    EXPECT_TRUE(close_scaled(out_b, rb.value, rb.scale, rtol));
  }
}

// ---- bias epilogue ----

TEST(GemmCuda, BiasEpilogue) {
  KIRZL_REQUIRE_GPU();
  manual_seed(7);
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    for (Size s : kSizes) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " M=" << s.M << " N=" << s.N << " K=" << s.K);
      Tensor a = rnd({s.M, s.K}, dt), w = rnd({s.N, s.K}, dt), bias = rnd({s.N}, dt);
      Tensor out = empty({s.M, s.N}, {.dtype = dt, .device = kCuda});
      poison(out);
      kernels::gemm_bias(out, a.to(kCuda), w.to(kCuda), bias.to(kCuda));
      Tensor expanded = bias.reshape({1, s.N}).expand({s.M, s.N});
      Reference r = reference(a, w, false, true, 1.0, 1.0, expanded, {s.M, s.N});
      EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt)));
      // A bias view offset by one element (not 16-byte aligned): the fallback path.
      Tensor bias_buf = empty({s.N + 1}, {.dtype = dt, .device = kCuda});
      Tensor bias_view = bias_buf.slice(0, 1, s.N + 1);
      bias_view.copy_(bias.to(kCuda));
      poison(out);
      kernels::gemm_bias(out, a.to(kCuda), w.to(kCuda), bias_view);
      EXPECT_TRUE(close_scaled(out, r.value, r.scale, rtol_for(dt)));
    }
  }
}

// ---- the public ops with autograd ----

// f64 CPU copies of CUDA leaves, for the reference graph.
Tensor cpu64_leaf(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::f64).requires_grad_(); }

TEST(GemmCuda, LinearForwardBackward) {
  KIRZL_REQUIRE_GPU();
  manual_seed(8);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (with_bias ? " with bias" : " without bias"));
      Tensor x = rnd({3, 5, 33}, dt).to(kCuda).requires_grad_();
      Tensor w = rnd({17, 33}, dt).to(kCuda).requires_grad_();
      Tensor b = with_bias ? rnd({17}, dt).to(kCuda).requires_grad_() : Tensor();
      Tensor y = linear(x, w, b);
      ASSERT_EQ(y.shape(), (Shape{3, 5, 17}));
      ASSERT_EQ(y.device(), kCuda);
      Tensor g = rnd({3, 5, 17}, dt);
      y.backward(g.to(kCuda));

      Tensor x64 = cpu64_leaf(x), w64 = cpu64_leaf(w), b64 = with_bias ? cpu64_leaf(b) : Tensor();
      Tensor y64 = linear(x64, w64, b64);
      y64.backward(g.to(DType::f64));
      Tensor ys = linear(abs(x64.detach()), abs(w64.detach()), with_bias ? abs(b64.detach()) : Tensor());
      const double rtol = rtol_for(dt);
      EXPECT_TRUE(close_scaled(y, y64.detach(), ys, rtol));
      Tensor g64 = abs(g.to(DType::f64));
      EXPECT_TRUE(close_scaled(x.grad(), x64.grad(), matmul(g64, abs(w64.detach())), rtol));
      EXPECT_TRUE(close_scaled(w.grad(), w64.grad(), matmul(g64.reshape({15, 17}).t(), abs(x64.detach()).reshape({15, 33})),
                               rtol));
      if (with_bias) {
        EXPECT_TRUE(close_scaled(b.grad(), b64.grad(), sum(g64, {0, 1}), rtol));
      }
    }
  }
}

TEST(GemmCuda, MatmulAndBmmForwardBackward) {
  KIRZL_REQUIRE_GPU();
  manual_seed(9);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {{{7}, {7}},           {{5, 7}, {7}},          {{7}, {7, 3}},
                                   {{4, 5, 7}, {7, 3}},  {{4, 5, 7}, {1, 7, 3}}, {{2, 4, 5, 7}, {4, 7, 3}},
                                   {{17, 257}, {257, 33}}};
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " a " << Tensor(empty(c.a)).describe() << " b "
                                        << Tensor(empty(c.b)).describe());
      Tensor a = rnd(c.a, dt).to(kCuda).requires_grad_(), b = rnd(c.b, dt).to(kCuda).requires_grad_();
      Tensor y = matmul(a, b);
      Tensor a64 = cpu64_leaf(a), b64 = cpu64_leaf(b);
      Tensor y64 = matmul(a64, b64);
      ASSERT_EQ(y.shape(), y64.shape());
      Tensor g = rnd(y64.shape(), dt);
      y.backward(g.to(kCuda));
      y64.backward(g.to(DType::f64));
      const double rtol = rtol_for(dt);
      Tensor aa = abs(a64.detach()), ab = abs(b64.detach()), ag = abs(g.to(DType::f64));
      EXPECT_TRUE(close_scaled(y, y64.detach(), matmul(aa, ab), rtol));
      // Gradient scales: the same products on |.| (sum_to over broadcast dims included).
      Tensor aa_l = aa.requires_grad_(), ab_l = ab.requires_grad_();
      matmul(aa_l, ab_l).backward(ag);
      EXPECT_TRUE(close_scaled(a.grad(), a64.grad(), aa_l.grad(), rtol));
      EXPECT_TRUE(close_scaled(b.grad(), b64.grad(), ab_l.grad(), rtol));
    }
    Tensor a = rnd({6, 9, 4}, dt), b = rnd({6, 4, 11}, dt);
    Tensor y = bmm(a.to(kCuda), b.to(kCuda));
    Reference r = reference(a, b, false, false, 1.0, 0.0, Tensor(), {6, 9, 11});
    EXPECT_TRUE(close_scaled(y, r.value, r.scale, rtol_for(dt)));
    // Transposed views through the op: read in place as column-major operands.
    Tensor at = rnd({33, 17}, dt), bt = rnd({65, 33}, dt);
    Tensor yt = matmul(at.to(kCuda).t(), bt.to(kCuda).t());
    Reference rt = reference(at, bt, true, true, 1.0, 0.0, Tensor(), {17, 65});
    EXPECT_TRUE(close_scaled(yt, rt.value, rt.scale, rtol_for(dt)));
  }
}

TEST(GemmCuda, ErrorsOnDtypeAndDeviceMismatch) {
  KIRZL_REQUIRE_GPU();
  Tensor a = rnd({4, 5}, DType::f32).to(kCuda);
  Tensor b16 = rnd({5, 3}, DType::bf16).to(kCuda);
  Tensor b_cpu = rnd({5, 3}, DType::f32);
  EXPECT_KIRZL_ERROR(matmul(a, b16), ErrorCode::InvalidArgument, "matmul", "same dtype", "bf16");
  EXPECT_KIRZL_ERROR(matmul(a, b_cpu), ErrorCode::InvalidArgument, "matmul", "device");
  Tensor w = rnd({3, 5}, DType::f32).to(kCuda);
  EXPECT_KIRZL_ERROR(linear(a, w, rnd({3}, DType::f32)), ErrorCode::InvalidArgument, "linear", "device");
  EXPECT_KIRZL_ERROR(linear(a, w, rnd({3}, DType::bf16).to(kCuda)), ErrorCode::InvalidArgument, "linear", "dtype");
  // The kernel itself, called with inconsistent operands.
  Tensor out = empty({4, 3}, {.device = kCuda});
  EXPECT_KIRZL_ERROR(kernels::gemm(out, a, b16, false, false, 1.0, 0.0), ErrorCode::InvalidArgument, "gemm", "dtype");
  EXPECT_KIRZL_ERROR(kernels::gemm(out, a, b_cpu, false, false, 1.0, 0.0), ErrorCode::InvalidArgument, "gemm", "device");
  EXPECT_KIRZL_ERROR(kernels::gemm(out, a, rnd({6, 3}, DType::f32).to(kCuda), false, false, 1.0, 0.0), ErrorCode::InvalidArgument, "gemm",
                     "shapes");
  Tensor ints = zeros({4, 5}, {.dtype = DType::i32, .device = kCuda});
  Tensor iout = zeros({4, 3}, {.dtype = DType::i32, .device = kCuda});
  EXPECT_KIRZL_ERROR(kernels::gemm(iout, ints, zeros({5, 3}, {.dtype = DType::i32, .device = kCuda}), false, false, 1.0, 0.0),
                     ErrorCode::InvalidArgument, "gemm", "floating");
}

}  // namespace
