// The checkpoints' CRC-32 (src/io/crc32.cpp, Note [crc32 folding]) against zlib's: every length
// that reaches each path of the folding (under 64 bytes, whole 64-byte steps, every tail length),
// every alignment, and data that sets every bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "io/crc32.h"

using kirzl::io::detail::crc32;
using kirzl::io::detail::crc32_zlib;

namespace {

std::vector<unsigned char> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

}  // namespace

TEST(Crc32, EqualsZlibForEveryLengthAndAlignment) {
  const auto data = random_bytes(4096 + 64, 1);
  for (size_t offset = 0; offset < 16; ++offset)
    for (size_t n = 0; n <= 600; ++n)
      ASSERT_EQ(crc32(data.data() + offset, n), crc32_zlib(data.data() + offset, n)) << "offset " << offset << ", " << n << " bytes";
}

TEST(Crc32, EqualsZlibForLargeAndExtremeData) {
  for (size_t n : {size_t{1} << 20, (size_t{1} << 20) + 13, size_t{3} << 20}) {
    const auto data = random_bytes(n, static_cast<uint32_t>(n));
    EXPECT_EQ(crc32(data.data(), n), crc32_zlib(data.data(), n)) << n << " bytes";
  }
  for (unsigned char fill : {0x00, 0xFF, 0x80, 0x01}) {
    const std::vector<unsigned char> data(1000, fill);
    EXPECT_EQ(crc32(data.data(), data.size()), crc32_zlib(data.data(), data.size())) << "bytes of " << int(fill);
  }
  // The standard check value of CRC-32.
  const char* nine = "123456789";
  EXPECT_EQ(crc32(nine, 9), 0xCBF43926u);
}

TEST(Crc32, ReportsWhetherItFolds) {
  // Informational: which path this CPU takes (the equality tests above cover both where they run).
  std::printf("crc32 path on this CPU: %s\n", kirzl::io::detail::crc32_uses_clmul() ? "PCLMULQDQ folding" : "zlib");
#if defined(__x86_64__)
  EXPECT_TRUE(kirzl::io::detail::crc32_uses_clmul()) << "every x86-64 CPU kirzl targets has PCLMULQDQ";
#endif
}
