// cuDNN's fused attention (kernels/cuda/attention_cudnn_frontend.cpp, Note [cudnn sdpa]) against
// the CPU reference in f64: forward (output and log-sum-exp) and backward for bf16/f16, head dims
// 64 and 128, T = 1, 17, 100, 257, 1024, B*H > 1, causal, q/k/v and the gradients as the strided
// views of one [B, T, 3 H D] projection (T = 1: the refusal, as cuDNN's backward takes no
// s_q = s_kv = 1); then the public ops: causal_attention_qkv against the split path and the CPU,
// KIRZL_ATTENTION=flash against cudnn, and the forced unsupported case.
// Skips with the reason without a GPU or without the cuDNN frontend in the build.
#include <gtest/gtest.h>

#include <cmath>
#include <kirzl/kirzl.hpp>

#include "kernels/attention_cudnn.h"
#include "kernels/cuda/attention_cases.hpp"
#include "kernels/flash_attention.h"
#include "support/cuda_compare.hpp"
#include "support/scoped_env.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::poison;
using kirzl::testing::ScopedEnv;
using kirzl::testing::Tolerance;

namespace {

const Device kGpu = Device::cuda(0);

#define REQUIRE_CUDNN_ATTENTION()                                                            \
  do {                                                                                       \
    KIRZL_REQUIRE_GPU();                                                                     \
    if (!kernels::cudnn_attention_forward.has_kernel(DeviceType::CUDA))                      \
      GTEST_SKIP() << "cuDNN attention test skipped: " << kernels::kNeedsCudnnFrontend;     \
  } while (0)

// cuDNN rounds the probabilities to the input type before P V (flash attention does), so the
// output and the gradients carry about one rounding of the 16-bit type per term.
Tolerance fwd_tol(DType dt) { return dt == DType::f16 ? Tolerance{5e-3, 2e-3} : Tolerance{2e-2, 1e-2}; }
Tolerance bwd_tol(DType dt) { return dt == DType::f16 ? Tolerance{1e-2, 5e-3} : Tolerance{3e-2, 3e-2}; }

using Case = kirzl::testing::AttentionCase;
using kirzl::testing::random_proj;

class CudnnAttentionCuda : public ::testing::TestWithParam<Case> {};

TEST_P(CudnnAttentionCuda, KernelsMatchF64Reference) {
  REQUIRE_CUDNN_ATTENTION();
  const auto [dt, D, T] = GetParam();
  const int64_t B = T >= 1024 ? 1 : 2, H = T >= 1024 ? 2 : 3;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Tensor proj = random_proj(B, T, H, D, dt, 300 + T + D);
  const std::string why = kernels::cudnn_attention_support(kirzl::testing::head_view(proj.to(kGpu), 0, H, D));
  if (T == 1) {
    // The frontend's sdpa_backward validation refuses s_q = s_kv = 1 (cudnn_frontend/node/
    // scaled_dot_product_flash_attention.h), so the support check does (naming the backward, or
    // the forward should cuDNN refuse that first), and the ops run the flash kernels there
    // (KIRZL_ATTENTION=auto).
    EXPECT_NE(why.find("cuDNN refuses the "), std::string::npos) << why;
    return;
  }
  ASSERT_EQ(why, "");

  // Reference: the CPU kernels in f64 on the same (rounded) values.
  Tensor p64 = proj.to(DType::f64);
  Tensor rq = kirzl::testing::head_view(p64, 0, H, D), rk = kirzl::testing::head_view(p64, 1, H, D), rv = kirzl::testing::head_view(p64, 2, H, D);
  Tensor ref_out = empty({B, H, T, D}, {.dtype = DType::f64}), ref_lse = empty({B, H, T}, {.dtype = DType::f64});
  kernels::flash_attention_forward.kernel(DeviceType::CPU)(ref_out, ref_lse, rq, rk, rv, scale);

  Tensor pd = proj.to(kGpu);
  Tensor q = kirzl::testing::head_view(pd, 0, H, D), k = kirzl::testing::head_view(pd, 1, H, D), v = kirzl::testing::head_view(pd, 2, H, D);
  ASSERT_FALSE(q.is_contiguous());
  Tensor out = empty({B, H, T, D}, {.dtype = dt, .device = kGpu});
  Tensor lse = empty({B, H, T}, {.dtype = DType::f32, .device = kGpu});
  poison(out);
  poison(lse);
  kernels::cudnn_attention_forward(out, lse, q, k, v, scale);
  EXPECT_TRUE(all_close(out, ref_out, fwd_tol(dt))) << "out";
  EXPECT_TRUE(all_close(lse, ref_lse, {2e-3, 2e-3})) << "lse";

  // Backward with a strided upstream gradient ([B, T, H, D] transposed), the gradients written
  // into the three views of one [B, T, 3 H D] tensor (the qkv layout).
  Generator gen(11 + T);
  Tensor g_bthd = randn({B, T, H, D}, {.dtype = DType::f32}, &gen).to(dt);
  Tensor ref_g = g_bthd.to(DType::f64).transpose(1, 2);
  Tensor rgq = empty({B, H, T, D}, {.dtype = DType::f64}), rgk = empty_like(rgq), rgv = empty_like(rgq);
  // delta = dO . O from the device's rounded output, as cuDNN computes it.
  Tensor out_rounded = out.to(Device::cpu()).to(DType::f64);
  kernels::flash_attention_backward.kernel(DeviceType::CPU)(rgq, rgk, rgv, ref_g, out_rounded, ref_lse, rq, rk, rv,
                                                            scale);
  Tensor dproj = empty({B, T, 3 * H * D}, {.dtype = dt, .device = kGpu});
  poison(dproj);
  Tensor gq = kirzl::testing::head_view(dproj, 0, H, D), gk = kirzl::testing::head_view(dproj, 1, H, D), gv = kirzl::testing::head_view(dproj, 2, H, D);
  Tensor g = g_bthd.to(kGpu).transpose(1, 2);
  kernels::cudnn_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
  EXPECT_TRUE(all_close(gq, rgq, bwd_tol(dt))) << "d q";
  EXPECT_TRUE(all_close(gk, rgk, bwd_tol(dt))) << "d k";
  EXPECT_TRUE(all_close(gv, rgv, bwd_tol(dt))) << "d v";

  // The same backward into contiguous gradients (another cached plan) gives the same values.
  Tensor cq = empty({B, H, T, D}, {.dtype = dt, .device = kGpu}), ck = empty_like(cq), cv = empty_like(cq);
  kernels::cudnn_attention_backward(cq, ck, cv, g.contiguous(), out, lse, q, k, v, scale);
  EXPECT_TRUE(all_close(cq, gq.to(Device::cpu()), bwd_tol(dt))) << "d q, contiguous";
  EXPECT_TRUE(all_close(ck, gk.to(Device::cpu()), bwd_tol(dt))) << "d k, contiguous";
  EXPECT_TRUE(all_close(cv, gv.to(Device::cpu()), bwd_tol(dt))) << "d v, contiguous";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnAttentionCuda,
                         ::testing::ValuesIn(kirzl::testing::attention_cases({DType::bf16, DType::f16}, {64, 128},
                                                                             {1, 17, 100, 257, 1024})),
                         kirzl::testing::attention_case_name);

// Output and d(proj) of attention over proj [B, T, 3 H D] on the GPU: through causal_attention_qkv
// (qkv = true) or causal_attention on the split views, with upstream gradient w [B, T, H D].
struct Result {
  Tensor out, grad;
};
Result run(const Tensor& proj, int64_t H, const Tensor& w, bool qkv) {
  const int64_t B = proj.size(0), T = proj.size(1), C = proj.size(2) / 3, D = C / H;
  Tensor p = proj.detach().to(w.device()).detach().requires_grad_();
  Tensor y = qkv ? causal_attention_qkv(p, H)
                 : causal_attention(kirzl::testing::head_view(p, 0, H, D), kirzl::testing::head_view(p, 1, H, D), kirzl::testing::head_view(p, 2, H, D)).transpose(1, 2).reshape(
                       {B, T, C});
  sum(mul(y.to(DType::f32), w)).backward();
  return {y.detach().to(Device::cpu()), p.grad().to(Device::cpu())};
}

TEST(CudnnAttentionOp, QkvMatchesSplitPathAndCpu) {
  REQUIRE_CUDNN_ATTENTION();
  ScopedEnv mode("KIRZL_ATTENTION", "cudnn");
  for (int64_t T : {1, 100, 257}) {
    const int64_t B = 2, H = 3, D = 64;
    Tensor proj = random_proj(B, T, H, D, DType::bf16, 500 + T);
    Generator gen(T);
    Tensor w = randn({B, T, H * D}, {.dtype = DType::f32}, &gen);
    if (T == 1) {
      // cuDNN's backward takes no s_q = s_kv = 1: forced, that is the Unsupported error naming
      // cuDNN's refusal; under auto the same call runs the flash kernels.
      try {
        run(proj, H, w.to(kGpu), true);
        ADD_FAILURE() << "KIRZL_ATTENTION=cudnn must refuse T = 1";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Unsupported) << e.what();
        EXPECT_NE(std::string(e.what()).find("cuDNN refuses the "), std::string::npos) << e.what();
      }
      mode.set("auto");
      Result fallback = run(proj, H, w.to(kGpu), true);
      Result cpu = run(proj.to(DType::f32), H, w, true);
      mode.set("cudnn");
      EXPECT_TRUE(all_close(fallback.out, cpu.out, fwd_tol(DType::bf16))) << "T = 1, auto";
      EXPECT_TRUE(all_close(fallback.grad, cpu.grad, bwd_tol(DType::bf16))) << "T = 1, auto";
      continue;
    }
    Result fused = run(proj, H, w.to(kGpu), true);
    Result split = run(proj, H, w.to(kGpu), false);
    Result cpu = run(proj.to(DType::f32), H, w, true);
    EXPECT_TRUE(all_close(fused.out, split.out, {1e-2, 1e-2})) << "T = " << T;  // other output strides: maybe another engine
    EXPECT_TRUE(all_close(fused.grad, split.grad, {1e-2, 1e-2})) << "T = " << T;
    EXPECT_TRUE(all_close(fused.out, cpu.out, fwd_tol(DType::bf16))) << "T = " << T;
    EXPECT_TRUE(all_close(fused.grad, cpu.grad, bwd_tol(DType::bf16))) << "T = " << T;
  }
}

TEST(CudnnAttentionOp, FlashAndCudnnAgree) {
  REQUIRE_CUDNN_ATTENTION();
  for (int64_t D : {64, 128}) {
    const int64_t B = 2, H = 2, T = 257;
    Tensor proj = random_proj(B, T, H, D, DType::bf16, 700 + D);
    Generator gen(D);
    Tensor w = randn({B, T, H * D}, {.dtype = DType::f32}, &gen).to(kGpu);
    ScopedEnv mode("KIRZL_ATTENTION", "flash");
    Result flash = run(proj, H, w, true);
    mode.set("cudnn");
    Result cudnn = run(proj, H, w, true);
    EXPECT_TRUE(all_close(cudnn.out, flash.out, fwd_tol(DType::bf16))) << "D = " << D;
    EXPECT_TRUE(all_close(cudnn.grad, flash.grad, bwd_tol(DType::bf16))) << "D = " << D;
  }
}

TEST(CudnnAttentionOp, ForcedWhereUnsupportedIsTheError) {
  REQUIRE_CUDNN_ATTENTION();
  ScopedEnv mode("KIRZL_ATTENTION", "cudnn");
  auto expect_unsupported = [](const Tensor& qkv, int64_t H, const char* why) {
    try {
      causal_attention_qkv(qkv, H);
      ADD_FAILURE() << "KIRZL_ATTENTION=cudnn must refuse " << qkv.describe();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Unsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find("KIRZL_ATTENTION=cudnn"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  expect_unsupported(zeros({1, 4, 3 * 64}, {.device = kGpu}), 1, "bf16 or f16");                          // f32
  expect_unsupported(zeros({1, 4, 3 * 36}, {.dtype = DType::bf16, .device = kGpu}), 1, "multiple of 8");  // D = 36
  // The kernel itself refuses too, naming the op.
  Tensor q = zeros({1, 1, 4, 64}, {.device = kGpu});
  Tensor out = empty_like(q), lse = empty({1, 1, 4}, {.device = kGpu});
  try {
    kernels::cudnn_attention_forward(out, lse, q, q, q, 0.125);
    ADD_FAILURE() << "f32 must be rejected by the cuDNN kernel";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Unsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("cudnn_attention_forward"), std::string::npos) << e.what();
  }
  // auto falls back to the flash kernels for f32 instead.
  mode.set("auto");
  EXPECT_NO_THROW(causal_attention_qkv(zeros({1, 4, 3 * 64}, {.device = kGpu}), 1));
}

}  // namespace
