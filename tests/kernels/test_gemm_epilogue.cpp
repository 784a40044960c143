// The host-side rules of the GEMM epilogues (kernels/gemm_epilogue.h): when cuBLASLt is asked
// for GELU_AUX_BIAS, DGELU_BGRAD and BGRADB and when the unfused kernels run instead, and the
// once-per-reason record of those fallbacks. No GPU needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <kirzl/kirzl.hpp>
#include <string>

#include "kernels/gemm_epilogue.h"

using namespace kirzl;
using kirzl::kernels::EpilogueProblem;
using kirzl::kernels::GemmEpilogue;
using kirzl::kernels::epilogue_unsupported_reason;

namespace {

// GPT-2 124M's c_fc at B*T = 1024 rows, with 256-byte aligned buffers.
EpilogueProblem gpt2_fc(GemmEpilogue e, DType dt = DType::bf16) {
  return {e, dt, 1024, 3072, 768, 0x7f0000001000, e == GemmEpilogue::BGradB ? 0u : 0x7f0000100000u, 3072};
}

bool mentions(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(GemmEpilogue, Names) {
  EXPECT_STREQ(kernels::epilogue_name(GemmEpilogue::BiasGeluAux), "GELU_AUX_BIAS");
  EXPECT_STREQ(kernels::epilogue_name(GemmEpilogue::DGeluBGrad), "DGELU_BGRAD");
  EXPECT_STREQ(kernels::epilogue_name(GemmEpilogue::BGradB), "BGRADB");
}

TEST(GemmEpilogue, Gpt2ShapesAreOfferedToCublasLt) {
  for (GemmEpilogue e : {GemmEpilogue::BiasGeluAux, GemmEpilogue::DGeluBGrad, GemmEpilogue::BGradB})
    for (DType dt : {DType::bf16, DType::f16, DType::f32})
      EXPECT_EQ(epilogue_unsupported_reason(gpt2_fc(e, dt)), "") << kernels::epilogue_name(e) << " " << dtype_name(dt);
}

TEST(GemmEpilogue, DtypesOutsideF32Bf16F16FallBack) {
  for (DType dt : {DType::f64, DType::i32, DType::i64}) {
    const std::string why = epilogue_unsupported_reason(gpt2_fc(GemmEpilogue::BiasGeluAux, dt));
    EXPECT_TRUE(mentions(why, "dtype") && mentions(why, dtype_name(dt))) << why;
  }
}

TEST(GemmEpilogue, EmptyProblemsFallBack) {
  for (int which = 0; which < 3; ++which) {
    EpilogueProblem p = gpt2_fc(GemmEpilogue::DGeluBGrad);
    (which == 0 ? p.m : which == 1 ? p.n : p.k) = 0;
    EXPECT_TRUE(mentions(epilogue_unsupported_reason(p), "empty")) << which;
  }
}

TEST(GemmEpilogue, DgeluWithDepthOneFallsBack) {
  EpilogueProblem p = gpt2_fc(GemmEpilogue::DGeluBGrad);
  p.k = 1;
  EXPECT_TRUE(mentions(epilogue_unsupported_reason(p), "k=1")) << epilogue_unsupported_reason(p);
  for (GemmEpilogue e : {GemmEpilogue::BiasGeluAux, GemmEpilogue::BGradB}) {
    EpilogueProblem q = gpt2_fc(e);
    q.k = 1;
    EXPECT_EQ(epilogue_unsupported_reason(q), "") << kernels::epilogue_name(e);
  }
}

TEST(GemmEpilogue, MisalignedBiasFallsBack) {
  for (GemmEpilogue e : {GemmEpilogue::BiasGeluAux, GemmEpilogue::DGeluBGrad, GemmEpilogue::BGradB}) {
    EpilogueProblem p = gpt2_fc(e);
    p.bias_address += 2;  // a bf16 view one element into an aligned vector
    const std::string why = epilogue_unsupported_reason(p);
    EXPECT_TRUE(mentions(why, "bias") && mentions(why, "16-byte")) << why;
    p.bias_address += 14;
    EXPECT_EQ(epilogue_unsupported_reason(p), "");
  }
}

TEST(GemmEpilogue, AuxMustBeAlignedWithALeadingDimensionDivisibleBy8) {
  for (GemmEpilogue e : {GemmEpilogue::BiasGeluAux, GemmEpilogue::DGeluBGrad}) {
    EpilogueProblem p = gpt2_fc(e);
    p.aux_address += 8;
    EXPECT_TRUE(mentions(epilogue_unsupported_reason(p), "aux matrix not 16-byte aligned"));
    // A width that is a multiple of 4 but not of 8 (36 columns): no aux leading dimension.
    EpilogueProblem q = gpt2_fc(e);
    q.n = q.aux_row_stride = 36;
    const std::string why = epilogue_unsupported_reason(q);
    EXPECT_TRUE(mentions(why, "aux leading dimension 36") && mentions(why, "multiple of 8")) << why;
    q.n = q.aux_row_stride = 40;
    EXPECT_EQ(epilogue_unsupported_reason(q), "");
    q.aux_row_stride = 32;  // shorter than a row
    EXPECT_TRUE(mentions(epilogue_unsupported_reason(q), "at least n=40"));
  }
}

TEST(GemmEpilogue, BgradbHasNoAux) {
  EpilogueProblem p = gpt2_fc(GemmEpilogue::BGradB);
  p.n = 37;  // an odd output width needs no aux alignment
  p.aux_address = 3;
  p.aux_row_stride = 0;
  EXPECT_EQ(epilogue_unsupported_reason(p), "");
}

TEST(GemmEpilogue, FallbacksAreRecordedOncePerReason) {
  const std::string reason = "a reason only this test gives";
  EXPECT_TRUE(kernels::note_epilogue_fallback("test_op", GemmEpilogue::BGradB, reason));
  EXPECT_FALSE(kernels::note_epilogue_fallback("test_op", GemmEpilogue::BGradB, reason));
  EXPECT_TRUE(kernels::note_epilogue_fallback("test_op", GemmEpilogue::DGeluBGrad, reason));
  EXPECT_TRUE(kernels::note_epilogue_fallback("other_op", GemmEpilogue::BGradB, reason));
  auto all = kernels::epilogue_fallbacks();
  const std::string entry = "test_op: BGRADB: " + reason;
  EXPECT_EQ(std::count(all.begin(), all.end(), entry), 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), "test_op: DGELU_BGRAD: " + reason), 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), "other_op: BGRADB: " + reason), 1);
}

TEST(GemmEpilogue, TheCpuHasNoEpilogueKernels) {
  // The ops compose on the CPU (linear_bias_gelu, gelu_mlp, linear's backward): only a backend
  // with these kernels takes the fused path.
  EXPECT_FALSE(kernels::gemm_bias_gelu.has_kernel(DeviceType::CPU));
  EXPECT_FALSE(kernels::gemm_dgelu_bgrad.has_kernel(DeviceType::CPU));
  EXPECT_FALSE(kernels::gemm_bgradb.has_kernel(DeviceType::CPU));
}
