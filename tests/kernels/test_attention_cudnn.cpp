// The CPU-side logic of the cuDNN attention kernels (kernels/attention_cudnn.h, Note [cudnn sdpa]):
// which dtypes and head dims are ever offered to cuDNN, and that the kernels exist exactly in
// builds with the cuDNN frontend (elsewhere: the one Unsupported error saying what is missing).
#include <gtest/gtest.h>

#include "kernels/attention_cudnn.h"
#include "kirzl/config.hpp"
#include "support/expect_error.hpp"

namespace kirzl {
namespace {

TEST(CudnnAttention, StaticSupport) {
  for (DType dt : {DType::bf16, DType::f16})
    for (int64_t D : {8, 64, 72, 128, 256}) EXPECT_EQ(kernels::cudnn_attention_static_reason(dt, D), "") << D;
  EXPECT_NE(kernels::cudnn_attention_static_reason(DType::f32, 64).find("bf16 or f16, got f32"), std::string::npos);
  EXPECT_NE(kernels::cudnn_attention_static_reason(DType::f64, 64).find("got f64"), std::string::npos);
  for (int64_t D : {0, 4, 36, 100, 264})
    EXPECT_NE(kernels::cudnn_attention_static_reason(DType::bf16, D).find("multiple of 8 up to 256, got " +
                                                                          std::to_string(D)),
              std::string::npos)
        << D;
}

TEST(CudnnAttention, KernelsExistOnlyWithTheFrontend) {
  EXPECT_EQ(kernels::cudnn_attention_forward.has_kernel(DeviceType::CUDA), bool(KIRZL_HAS_CUDNN_FRONTEND));
  EXPECT_EQ(kernels::cudnn_attention_backward.has_kernel(DeviceType::CUDA), bool(KIRZL_HAS_CUDNN_FRONTEND));
  EXPECT_EQ(kernels::cudnn_attention_support.has_kernel(DeviceType::CUDA), bool(KIRZL_HAS_CUDNN_FRONTEND));
  EXPECT_FALSE(kernels::cudnn_attention_forward.has_kernel(DeviceType::CPU));
  if (!KIRZL_HAS_CUDNN_FRONTEND) {
    const char* why = KIRZL_HAS_CUDA ? "cuDNN frontend" : "kirzl was built without CUDA";
    EXPECT_KIRZL_ERROR(kernels::cudnn_attention_forward.kernel(DeviceType::CUDA), ErrorCode::Unsupported,
                       "cudnn_attention_forward", "CUDA", why);
  }
}

}  // namespace
}  // namespace kirzl
