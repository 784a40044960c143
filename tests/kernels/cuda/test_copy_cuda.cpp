// CUDA copy/convert and fill against the CPU: every dtype pair, strided and broadcast sources,
// strided destinations, misaligned views; contiguous(), clone(), to(dtype), copy_(), cat and the
// factories on a CUDA device.
#include "kernels/copy.h"
#include "kernels/cuda/ew_test_util.hpp"

namespace kirzl {
namespace {

using namespace kirzl::testing;

// Values every dtype holds exactly or rounds the same way on both sides (no out-of-range casts,
// which are undefined behaviour on the host).
Tensor castable_values(const Shape& s, uint64_t seed) { return div(random_cpu(s, DType::i32, seed, 0, 200).to(DType::f64), 4.0); }

TEST(CopyCuda, EveryDtypePairContiguousAndStrided) {
  KIRZL_REQUIRE_GPU();
  for (DType src_dt : all_dtypes())
    for (DType dst_dt : all_dtypes())
      for (int64_t n : std::vector<int64_t>{1, 3, 17, 257, kBig}) {
        if (n == kBig && src_dt != DType::f32 && dst_dt != DType::bf16) continue;
        Tensor src = castable_values({n}, 90 + n).to(src_dt);
        Tensor expected = empty({n}, {.dtype = dst_dt});
        kernels::copy.kernel(DeviceType::CPU)(expected, src);
        for (int variant = 0; variant < 3; ++variant) {
          Tensor g = variant == 0 ? src.to(kGpu) : variant == 1 ? misaligned_gpu(src) : non_contiguous_copy(src.to(kGpu));
          Tensor out = empty({n}, {.dtype = dst_dt, .device = kGpu});
          poison(out);
          kernels::copy(out, g);
          EXPECT_TRUE(all_close(out, expected, {0, 0})) << name_of(src_dt) << " -> " << name_of(dst_dt) << " n=" << n << " variant " << variant;
        }
      }
}

TEST(CopyCuda, RoundingOfNarrowingCastsMatchesCpu) {
  KIRZL_REQUIRE_GPU();
  Tensor src = random_cpu({100003}, DType::f64, 5);
  for (DType dst : {DType::f32, DType::bf16, DType::f16})
    for (DType mid : {DType::f64, DType::f32}) {
      Tensor s = src.to(mid);
      Tensor expected = s.to(dst);
      Tensor actual = s.to(kGpu).to(dst);
      EXPECT_TRUE(all_close(actual, expected, {0, 0})) << name_of(mid) << " -> " << name_of(dst);
    }
}

TEST(CopyCuda, ViewsBecomeContiguous) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::u8}) {
    Tensor x = castable_values({5, 7, 9, 11}, 3).to(dt);
    Tensor g = x.to(kGpu);
    const std::vector<std::pair<Tensor, Tensor>> views = {
        {x.transpose(1, 3), g.transpose(1, 3)},
        {x.permute({3, 0, 2, 1}), g.permute({3, 0, 2, 1})},
        {x.slice(2, 1, 9, 3), g.slice(2, 1, 9, 3)},
        {x.select(1, 4).slice(0, 1, 5, 2), g.select(1, 4).slice(0, 1, 5, 2)},
        {x.narrow(3, 1, 10), g.narrow(3, 1, 10)},
        {x.slice(0, 0, 1).expand({4, 7, 9, 11}), g.slice(0, 0, 1).expand({4, 7, 9, 11})}};
    for (const auto& [vc, vg] : views) {
      EXPECT_TRUE(all_close(vg.contiguous(), vc.contiguous())) << name_of(dt) << " " << vc.describe();
      EXPECT_TRUE(vg.contiguous().is_contiguous());
      EXPECT_TRUE(all_close(vg.clone(), vc.clone())) << name_of(dt);
      EXPECT_TRUE(all_close(vg.to(DType::f32), vc.to(DType::f32))) << name_of(dt);
    }
  }
}

TEST(CopyCuda, CopyIntoStridedDestinationWithBroadcast) {
  KIRZL_REQUIRE_GPU();
  Tensor dc = full({6, 10}, 3.0), dg = full({6, 10}, 3.0, {.device = kGpu});
  Tensor src = random_cpu({1, 5}, DType::f64, 9);
  dc.slice(1, 0, 10, 2).copy_(src);  // broadcast [1, 5] into a stepped view, with a cast f64 -> f32
  dg.slice(1, 0, 10, 2).copy_(src.to(kGpu));
  EXPECT_TRUE(all_close(dg, dc));
  Tensor tc = zeros({4, 3}), tg = zeros({4, 3}, {.device = kGpu});
  Tensor s2 = random_cpu({3, 4}, DType::bf16, 10);
  tc.copy_(s2.t());
  tg.copy_(s2.to(kGpu).t());
  EXPECT_TRUE(all_close(tg, tc));
}

TEST(FillCuda, StridedFillLeavesTheRestAlone) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : all_dtypes()) {
    Tensor c = zeros({9, 13}, {.dtype = dt}), g = zeros({9, 13}, {.dtype = dt, .device = kGpu});
    c.slice(1, 1, 13, 3).fill_(5.0);
    g.slice(1, 1, 13, 3).fill_(5.0);
    c.t().slice(0, 2, 4).fill_(7.0);
    g.t().slice(0, 2, 4).fill_(7.0);
    EXPECT_TRUE(all_close(g, c)) << name_of(dt);
    Tensor big = empty({1000003}, {.dtype = dt, .device = kGpu});
    big.narrow(0, 1, 1000001).fill_(2.0);  // misaligned start
    big.narrow(0, 0, 1).fill_(1.0);
    big.narrow(0, 1000002, 1).fill_(1.0);
    Tensor expected = full({1000003}, 2.0, {.dtype = dt});
    expected.narrow(0, 0, 1).fill_(1.0);
    expected.narrow(0, 1000002, 1).fill_(1.0);
    EXPECT_TRUE(all_close(big, expected)) << name_of(dt);
  }
}

TEST(FactoriesCuda, SameValuesAsOnTheCpu) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    const TensorOptions c{.dtype = dt}, g{.dtype = dt, .device = kGpu};
    EXPECT_TRUE(all_close(zeros({3, 5}, g), zeros({3, 5}, c)));
    EXPECT_TRUE(all_close(ones({kBig}, g), ones({kBig}, c)));
    EXPECT_TRUE(all_close(full({7}, 2.5, g), full({7}, 2.5, c)));
    EXPECT_TRUE(all_close(arange(0.0, 10.0, 0.5, g), arange(0.0, 10.0, 0.5, c)));
    Generator a(5), b(5);
    EXPECT_TRUE(all_close(rand({257}, g, &a), rand({257}, c, &b), {0, 0}));
    EXPECT_TRUE(all_close(randn({257}, g, &a), randn({257}, c, &b), {0, 0}));
    EXPECT_TRUE(all_close(from_vector<float>({1, 2, 3}, {3}, g), from_vector<float>({1, 2, 3}, {3}, c)));
    Tensor sc = scalar_tensor(4.0, g);
    EXPECT_EQ(sc.item(), 4.0);
  }
  Generator a(6), b(6);
  EXPECT_TRUE(all_close(randint(-5, 5, {100}, {.dtype = DType::i64, .device = kGpu}, &a), randint(-5, 5, {100}, {.dtype = DType::i64}, &b)));
}

TEST(ShapeOpsCuda, CatStackSplitWithAutograd) {
  KIRZL_REQUIRE_GPU();
  Tensor a = random_cpu({3, 4}, DType::f32, 1), b = random_cpu({3, 5}, DType::f32, 2);
  Tensor ac = a.clone().requires_grad_(true), bc = b.clone().requires_grad_(true);
  Tensor ag = a.to(kGpu).requires_grad_(true), bg = b.to(kGpu).requires_grad_(true);
  Tensor yc = cat({ac, bc}, 1), yg = cat({ag, bg}, 1);
  EXPECT_TRUE(all_close(yg, yc));
  Tensor g = random_cpu(yc.shape(), DType::f32, 3);
  yc.backward(g);
  yg.backward(g.to(kGpu));
  EXPECT_TRUE(all_close(ag.grad(), ac.grad()));
  EXPECT_TRUE(all_close(bg.grad(), bc.grad()));
  EXPECT_TRUE(all_close(stack({a.to(kGpu), a.to(kGpu)}, 1), stack({a, a}, 1)));
  auto parts = split(yg.detach(), 3, 1);
  EXPECT_TRUE(all_close(parts.back(), split(yc.detach(), 3, 1).back()));
}

}  // namespace
}  // namespace kirzl
