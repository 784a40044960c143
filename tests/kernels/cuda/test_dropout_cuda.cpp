// CUDA dropout draws exactly the CPU's mask (the same Philox4x32-10 stream keyed by seed and
// offset), so outputs and gradients are compared bit for bit.
#include "kernels/cuda/ew_test_util.hpp"
#include "kernels/dropout.h"

namespace kirzl {
namespace {

using namespace kirzl::testing;

constexpr Tolerance kExact{0, 0};

TEST(DropoutCuda, KernelMaskEqualsCpuBitForBit) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : float_dtypes())
    for (int64_t n : std::vector<int64_t>{1, 3, 4, 5, 17, 257, kBig})
      for (double p : {0.1, 0.5, 0.999})
        for (uint64_t seed : {0ull, 12345678901234ull}) {
          Tensor x = random_cpu({n}, dt, 100 + n);
          const double scale = 1.0 / (1.0 - p);
          const uint64_t offset = 77 + n;
          Tensor expected = empty({n}, {.dtype = dt});
          kernels::dropout_apply.kernel(DeviceType::CPU)(expected, x, p, scale, seed, offset);
          Tensor out = empty({n}, {.dtype = dt, .device = kGpu});
          poison(out);
          kernels::dropout_apply(out, x.to(kGpu), p, scale, seed, offset);
          EXPECT_TRUE(all_close(out, expected, kExact)) << name_of(dt) << " n=" << n << " p=" << p << " seed " << seed;
        }
}

TEST(DropoutCuda, MaskMatchesCpuAtLargeOffsets) {
  KIRZL_REQUIRE_GPU();
  // Counters above 2^32 use the high counter word: both sides must carry it the same way.
  Tensor x = ones({4099});
  Tensor expected = empty({4099});
  kernels::dropout_apply.kernel(DeviceType::CPU)(expected, x, 0.3, 1.0, 99, (uint64_t{1} << 32) - 500);
  Tensor out = empty({4099}, {.device = kGpu});
  poison(out);
  kernels::dropout_apply(out, x.to(kGpu), 0.3, 1.0, 99, (uint64_t{1} << 32) - 500);
  EXPECT_TRUE(all_close(out, expected, kExact));
}

TEST(DropoutCuda, OpForwardBackwardEqualCpu) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (double p : {0.0, 0.2, 0.9999, 1.0})
      for (const Shape& s : {Shape{1}, Shape{17, 33}, Shape{kBig}}) {
        Tensor x = random_cpu(s, dt, 5);
        Generator gc(2024), gg(2024);
        Tensor xc = x.clone().requires_grad_(true), xg = x.to(kGpu).requires_grad_(true);
        Tensor yc = dropout(xc, p, true, &gc), yg = dropout(xg, p, true, &gg);
        EXPECT_TRUE(all_close(yg, yc, kExact)) << name_of(dt) << " p=" << p << " " << s.str();
        EXPECT_EQ(gc.offset(), gg.offset());
        Tensor g = random_cpu(s, dt, 6);
        yc.backward(g);
        yg.backward(g.to(kGpu));
        EXPECT_TRUE(all_close(xg.grad(), xc.grad(), kExact)) << name_of(dt) << " p=" << p << " grad";
        if (p == 0.0) {
          EXPECT_TRUE(all_close(yg, x, kExact));
        }
        if (p == 1.0) {
          EXPECT_TRUE(all_close(yg, zeros(s, {.dtype = dt}), kExact));
        }
      }
}

TEST(DropoutCuda, NonContiguousInputAndKeptFraction) {
  KIRZL_REQUIRE_GPU();
  Tensor x = ones({1001, 999});
  Generator gc(7), gg(7);
  Tensor yc = dropout(x.t(), 0.25, true, &gc);
  Tensor yg = dropout(x.to(kGpu).t(), 0.25, true, &gg);
  EXPECT_TRUE(all_close(yg, yc, kExact));
  const double kept = sum(ne(yg, zeros_like(yg)).to(DType::f64)).item() / static_cast<double>(x.numel());
  EXPECT_NEAR(kept, 0.75, 0.005);
}

}  // namespace
}  // namespace kirzl
