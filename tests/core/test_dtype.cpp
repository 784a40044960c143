#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

using namespace kirzl;

TEST(DType, SizesNamesAndPromotion) {
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_STREQ(dtype_name(DType::f16), "f16");
  EXPECT_EQ(dtype_from_name("u16"), DType::u16);
  EXPECT_THROW(dtype_from_name("f8"), Error);
  EXPECT_EQ(promote_types(DType::f32, DType::f64), DType::f64);
  EXPECT_EQ(promote_types(DType::bf16, DType::f16), DType::f32);
  EXPECT_EQ(promote_types(DType::i64, DType::bf16), DType::bf16);
  EXPECT_EQ(promote_types(DType::u8, DType::i32), DType::i32);
}

TEST(BFloat16, RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(BFloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
  // 1 + 3*2^-8 lies between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to even.
  EXPECT_EQ(BFloat16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3f82);
  // Just above the tie rounds up.
  EXPECT_EQ(BFloat16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)).bits, 0x3f81);
  EXPECT_EQ(float(BFloat16(-2.5f)), -2.5f);
  EXPECT_TRUE(std::isnan(float(BFloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(float(BFloat16(std::numeric_limits<float>::infinity()))));
}

TEST(Half, RoundsToNearestEvenAndHandlesRanges) {
  EXPECT_EQ(Half(1.0f).bits, 0x3c00);
  EXPECT_EQ(Half(-2.0f).bits, 0xc000);
  EXPECT_EQ(Half(65504.0f).bits, 0x7bff);           // largest finite half
  EXPECT_EQ(Half(65520.0f).bits, 0x7c00);           // rounds to inf
  EXPECT_EQ(Half(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);      // tie -> even
  EXPECT_EQ(Half(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3c02);  // tie -> even (up)
  EXPECT_EQ(Half(std::ldexp(1.0f, -24)).bits, 0x0001);             // smallest subnormal
  EXPECT_EQ(Half(std::ldexp(1.0f, -25)).bits, 0x0000);             // tie with 0 -> even (0)
  EXPECT_EQ(Half(std::ldexp(3.0f, -26)).bits, 0x0001);             // 0.75 ulp -> 1
  EXPECT_EQ(Half(std::ldexp(3.0f, -25)).bits, 0x0002);             // 1.5 ulp tie -> even (2)
  EXPECT_FLOAT_EQ(Half::to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_FLOAT_EQ(Half::to_float(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isnan(Half::to_float(Half(std::numeric_limits<float>::quiet_NaN()).bits)));
  // Every half value survives a round trip through float.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t h = static_cast<uint16_t>(b);
    float f = Half::to_float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(Half(f).bits, h) << "bits " << b;
  }
}

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(Device("cpu"), Device::cpu());
  EXPECT_EQ(Device("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_THROW(Device("gpu"), Error);
  EXPECT_THROW(Device("cuda:x"), Error);
}
