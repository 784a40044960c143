// CUDA flash attention against the CPU reference: forward (output and log-sum-exp) and backward,
// f32/bf16/f16, head dims 64 and 128, T = 1, 17, 100, 257, B*H > 1, q/k/v as strided views split
// from one [B, T, 3 H D] projection, outputs written in place into strided views, poisoned
// outputs, determinism, and the public ops (causal_attention, causal_attention_qkv).
#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "kernels/cuda/attention_cases.hpp"
#include "kernels/flash_attention.h"
#include "support/cuda_compare.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::poison;
using kirzl::testing::Tolerance;

namespace {

const Device kGpu = Device::cuda(0);

// Different summation orders (online vs two-pass softmax, tiles) over up to T * D terms.
Tolerance fwd_tol(DType dt) {
  switch (dt) {
    case DType::f32: return {2e-4, 2e-5};
    case DType::f16: return {5e-3, 2e-3};
    default: return {2e-2, 1e-2};
  }
}
Tolerance bwd_tol(DType dt) {
  switch (dt) {
    case DType::f32: return {1e-3, 1e-4};
    case DType::f16: return {1e-2, 5e-3};
    default: return {3e-2, 3e-2};
  }
}

// q, k, v views [B, H, T, D] of one projection [B, T, 3 H D] (non-contiguous, unit last stride).
struct Qkv {
  Tensor proj, q, k, v;
};
Qkv split_qkv(const Tensor& proj, int64_t H, int64_t D) {
  using kirzl::testing::head_view;
  return {proj, head_view(proj, 0, H, D), head_view(proj, 1, H, D), head_view(proj, 2, H, D)};
}

using Case = kirzl::testing::AttentionCase;
using kirzl::testing::random_proj;

class FlashAttentionCuda : public ::testing::TestWithParam<Case> {};

TEST_P(FlashAttentionCuda, KernelsMatchCpuReference) {
  KIRZL_REQUIRE_GPU();
  const auto [dt, D, T] = GetParam();
  const int64_t B = 2, H = 3;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Tensor proj = random_proj(B, T, H, D, dt, 100 + T + D);
  // Reference in f32 from the same (rounded) values.
  Qkv ref = split_qkv(proj.to(DType::f32), H, D);
  Qkv dev = split_qkv(proj.to(kGpu), H, D);
  ASSERT_FALSE(dev.q.is_contiguous());

  Tensor ref_out = empty({B, H, T, D}), ref_lse = empty({B, H, T});
  kernels::flash_attention_forward.kernel(DeviceType::CPU)(ref_out, ref_lse, ref.q, ref.k, ref.v, scale);
  Tensor out = empty({B, H, T, D}, {.dtype = dt, .device = kGpu});
  Tensor lse = empty({B, H, T}, {.dtype = DType::f32, .device = kGpu});
  poison(out);
  poison(lse);
  kernels::flash_attention_forward.kernel(DeviceType::CUDA)(out, lse, dev.q, dev.k, dev.v, scale);
  EXPECT_TRUE(all_close(out, ref_out, fwd_tol(dt))) << "out";
  EXPECT_TRUE(all_close(lse, ref_lse, {1e-4, 1e-4})) << "lse";

  // Backward with a strided upstream gradient ([B, T, H, D] transposed).
  Generator gen(7 + T);
  Tensor g_btdh = randn({B, T, H, D}, {.dtype = DType::f32}, &gen).to(dt);
  Tensor g_ref = g_btdh.to(DType::f32).transpose(1, 2);
  Tensor g_dev = g_btdh.to(kGpu).transpose(1, 2);
  Tensor rgq = empty({B, H, T, D}), rgk = empty({B, H, T, D}), rgv = empty({B, H, T, D});
  // The reference backward uses the reference output rounded like the device's (delta = dO . O).
  Tensor ref_out_rounded = out.to(Device::cpu()).to(DType::f32);
  kernels::flash_attention_backward.kernel(DeviceType::CPU)(rgq, rgk, rgv, g_ref, ref_out_rounded, ref_lse, ref.q, ref.k, ref.v, scale);
  Tensor gq = empty({B, H, T, D}, {.dtype = dt, .device = kGpu});
  Tensor gk = empty_like(gq), gv = empty_like(gq);
  poison(gq);
  poison(gk);
  poison(gv);
  kernels::flash_attention_backward.kernel(DeviceType::CUDA)(gq, gk, gv, g_dev, out, lse, dev.q, dev.k, dev.v, scale);
  EXPECT_TRUE(all_close(gq, rgq, bwd_tol(dt))) << "d q";
  EXPECT_TRUE(all_close(gk, rgk, bwd_tol(dt))) << "d k";
  EXPECT_TRUE(all_close(gv, rgv, bwd_tol(dt))) << "d v";

  // Deterministic: a second backward gives the same bits.
  Tensor gq2 = empty_like(gq), gk2 = empty_like(gq), gv2 = empty_like(gq);
  kernels::flash_attention_backward.kernel(DeviceType::CUDA)(gq2, gk2, gv2, g_dev, out, lse, dev.q, dev.k, dev.v, scale);
  EXPECT_TRUE(all_close(gq2, gq.to(Device::cpu()), {0, 0}));
  EXPECT_TRUE(all_close(gk2, gk.to(Device::cpu()), {0, 0}));
  EXPECT_TRUE(all_close(gv2, gv.to(Device::cpu()), {0, 0}));
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashAttentionCuda,
                         ::testing::ValuesIn(kirzl::testing::attention_cases({DType::f32, DType::bf16, DType::f16},
                                                                             {64, 128}, {1, 17, 100, 257})),
                         kirzl::testing::attention_case_name);

// The public op on CUDA (flash path, forced: bf16 would run in cuDNN otherwise): gradients reach
// the [B, T, 3 H D] projection through the strided views; compared with the CPU op (the CPU's
// flash kernels, an implementation of their own) in f32.
void check_public_op(DType dt, int64_t D, int64_t T, Tolerance fwd, Tolerance bwd) {
  kirzl::testing::ScopedEnv flash("KIRZL_ATTENTION", "flash");
  const int64_t B = 2, H = 2;
  Tensor proj = random_proj(B, T, H, D, dt, 900 + T);
  // detach(): for f32, proj.to(f32) is proj itself, and making it require grad would turn
  // proj.to(kGpu) into a non-leaf (the first GPU run failed so).
  Tensor p_ref = proj.to(DType::f32).detach().requires_grad_();
  Tensor p_dev = proj.to(kGpu).detach().requires_grad_();
  Qkv r = split_qkv(p_ref, H, D), d = split_qkv(p_dev, H, D);
  Tensor out_ref = causal_attention(r.q, r.k, r.v);
  Tensor out_dev = causal_attention(d.q, d.k, d.v);
  EXPECT_TRUE(all_close(out_dev, out_ref, fwd));
  Generator gen(5);
  Tensor g = randn({B, H, T, D}, {.dtype = DType::f32}, &gen).to(dt);
  sum(mul(out_ref, g.to(DType::f32))).backward();
  sum(mul(out_dev, g.to(kGpu))).backward();
  ASSERT_TRUE(p_dev.grad().defined());
  EXPECT_TRUE(all_close(p_dev.grad(), p_ref.grad(), bwd));
}

TEST(FlashAttentionCudaOp, PublicOpThroughStridedViews) {
  KIRZL_REQUIRE_GPU();
  for (int64_t T : {1, 100, 257}) {
    check_public_op(DType::f32, 64, T, fwd_tol(DType::f32), bwd_tol(DType::f32));
    check_public_op(DType::bf16, 64, T, fwd_tol(DType::bf16), bwd_tol(DType::bf16));
  }
  check_public_op(DType::bf16, 128, 77, fwd_tol(DType::bf16), bwd_tol(DType::bf16));
}

// The outputs as causal_attention_qkv passes them: out as the head view of a [B, T, C] tensor,
// gq/gk/gv as the three head views of one d(qkv), all poisoned first: the same bits as the
// contiguous outputs of the kernel test above, and every element written.
TEST_P(FlashAttentionCuda, WritesStridedOutputsInPlace) {
  KIRZL_REQUIRE_GPU();
  const auto [dt, D, T] = GetParam();
  const int64_t B = 2, H = 3, C = H * D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  using kirzl::testing::head_view;
  Qkv dev = split_qkv(random_proj(B, T, H, D, dt, 300 + T + D).to(kGpu), H, D);
  const TensorOptions on_gpu{.dtype = dt, .device = kGpu};
  Tensor out = empty({B, H, T, D}, on_gpu), lse = empty({B, H, T}, {.dtype = DType::f32, .device = kGpu});
  kernels::flash_attention_forward.kernel(DeviceType::CUDA)(out, lse, dev.q, dev.k, dev.v, scale);
  Tensor y = empty({B, T, C}, on_gpu);
  poison(y);
  Tensor out_view = head_view(y, 0, H, D);
  Tensor lse2 = empty_like(lse);
  kernels::flash_attention_forward.kernel(DeviceType::CUDA)(out_view, lse2, dev.q, dev.k, dev.v, scale);
  EXPECT_TRUE(all_close(y, out.transpose(1, 2).contiguous().reshape({B, T, C}), {0, 0})) << "out";

  Generator gen(11 + T);
  Tensor g = randn({B, H, T, D}, {.dtype = DType::f32}, &gen).to(dt).to(kGpu);
  Tensor gq = empty({B, H, T, D}, on_gpu), gk = empty_like(gq), gv = empty_like(gq);
  kernels::flash_attention_backward.kernel(DeviceType::CUDA)(gq, gk, gv, g, out, lse, dev.q, dev.k, dev.v, scale);
  Tensor dqkv = empty({B, T, 3 * C}, on_gpu);
  poison(dqkv);
  Tensor vq = head_view(dqkv, 0, H, D), vk = head_view(dqkv, 1, H, D), vv = head_view(dqkv, 2, H, D);
  kernels::flash_attention_backward.kernel(DeviceType::CUDA)(vq, vk, vv, g, out_view, lse, dev.q, dev.k, dev.v, scale);
  auto as_btc = [&](const Tensor& t) { return t.transpose(1, 2).contiguous().reshape({B, T, C}); };
  EXPECT_TRUE(all_close(dqkv, cat({as_btc(gq), as_btc(gk), as_btc(gv)}, 2), {0, 0})) << "d qkv";
}

// causal_attention_qkv on the flash path (output and d(qkv) written in place) against the CPU
// composition (split, causal_attention, heads back) in f32.
TEST(FlashAttentionCudaOp, QkvOpMatchesTheCpuComposition) {
  KIRZL_REQUIRE_GPU();
  kirzl::testing::ScopedEnv flash("KIRZL_ATTENTION", "flash");
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t T : {1, 100, 257}) {
      const int64_t B = 2, H = 2, D = 64;
      Tensor proj = random_proj(B, T, H, D, dt, 950 + T);
      Tensor p_ref = proj.to(DType::f32).detach().requires_grad_();
      Tensor p_dev = proj.to(kGpu).detach().requires_grad_();
      Tensor y_ref = causal_attention_qkv(p_ref, H), y_dev = causal_attention_qkv(p_dev, H);
      EXPECT_TRUE(all_close(y_dev, y_ref, fwd_tol(dt))) << dtype_name(dt) << " T = " << T;
      Generator gen(T);
      Tensor w = randn({B, T, H * D}, {.dtype = DType::f32}, &gen);
      sum(mul(y_ref, w)).backward();
      sum(mul(y_dev, w.to(kGpu).to(dt))).backward();
      ASSERT_TRUE(p_dev.grad().defined());
      EXPECT_TRUE(all_close(p_dev.grad(), p_ref.grad(), bwd_tol(dt))) << dtype_name(dt) << " T = " << T;
    }
}

TEST(FlashAttentionCudaOp, OtherHeadDimsUseTheReferenceKernels) {
  KIRZL_REQUIRE_GPU();
  EXPECT_FALSE(kernels::flash_attention_cuda_supports(DType::f32, 32));
  EXPECT_FALSE(kernels::flash_attention_cuda_supports(DType::f64, 64));
  check_public_op(DType::f32, 32, 33, fwd_tol(DType::f32), bwd_tol(DType::f32));
}

TEST(FlashAttentionCudaOp, RejectsUnsupportedInputsClearly) {
  KIRZL_REQUIRE_GPU();
  Tensor q = zeros({1, 1, 4, 32}, {.device = kGpu});
  Tensor out = empty_like(q), lse = empty({1, 1, 4}, {.device = kGpu});
  try {
    kernels::flash_attention_forward.kernel(DeviceType::CUDA)(out, lse, q, q, q, 1.0);
    ADD_FAILURE() << "head dim 32 must be rejected by the flash kernel";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head dim 64 or 128"), std::string::npos) << e.what();
  }
}

}  // namespace
