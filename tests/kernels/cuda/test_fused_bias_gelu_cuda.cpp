// CUDA bias_gelu against the CPU kernels: poisoned outputs, odd sizes, f32/bf16/f16, forward and
// backward, determinism of the bias gradient, and the public op with autograd on strided input.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "kernels/fused_bias_gelu.h"
#include "support/cuda_compare.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::non_contiguous_copy;
using kirzl::testing::poison;
using kirzl::testing::Tolerance;
using kirzl::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);

Tensor rnd(const Shape& s, DType dt, uint64_t seed, double mul_by = 1.0) {
  Generator gen(seed);
  return mul(randn(s, {.dtype = DType::f32}, &gen), mul_by).to(dt);
}

TEST(BiasGeluCuda, KernelsMatchCpu) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t m : {1, 3, 257, 3000})
      for (int64_t n : {1, 17, 3072}) {
        if (m * n > 3000 * 1000) continue;
        SCOPED_TRACE(std::string(dtype_name(dt)) + " m=" + std::to_string(m) + " n=" + std::to_string(n));
        Tensor x = rnd({m, n}, dt, 1, 3.0), b = rnd({n}, dt, 2), g = rnd({m, n}, dt, 3);
        Tensor y_c = empty({m, n}, {.dtype = dt});
        kernels::bias_gelu_forward.kernel(DeviceType::CPU)(y_c, x, b, n);
        const TensorOptions o{.dtype = dt, .device = kGpu};
        Tensor y = empty({m, n}, o);
        poison(y);
        Tensor xd = x.to(kGpu), bd = b.to(kGpu), gd = g.to(kGpu);
        kernels::bias_gelu_forward.kernel(DeviceType::CUDA)(y, xd, bd, n);
        const auto tol = dt == DType::f32 ? Tolerance{1e-5, 1e-6} : tolerance_for(dt);
        EXPECT_TRUE(all_close(y, y_c, tol)) << "forward";

        Tensor gx_c = empty({m, n}, {.dtype = dt}), gb_c = empty({n}, {.dtype = dt});
        kernels::bias_gelu_backward.kernel(DeviceType::CPU)(gx_c, gb_c, g, x, b, n);
        Tensor gx = empty({m, n}, o), gb = empty({n}, o);
        poison(gx);
        poison(gb);
        kernels::bias_gelu_backward.kernel(DeviceType::CUDA)(gx, gb, gd, xd, bd, n);
        EXPECT_TRUE(all_close(gx, gx_c, tol)) << "d x";
        // The bias gradient sums up to 3000 rows in chunks: wider in f32.
        EXPECT_TRUE(all_close(gb, gb_c, dt == DType::f32 ? Tolerance{1e-4, 1e-4} : tolerance_for(dt)))
            << "d bias";
        Tensor gb2 = empty({n}, o), none;
        kernels::bias_gelu_backward.kernel(DeviceType::CUDA)(none, gb2, gd, xd, bd, n);
        EXPECT_TRUE(all_close(gb2, gb.to(Device::cpu()), {0, 0})) << "deterministic, and independent of gx";
      }
}

TEST(BiasGeluCuda, PublicOpWithAutogradOnStridedInput) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x = rnd({6, 7, 3072}, dt, 10, 2.0), b = rnd({3072}, dt, 11), g = rnd({6, 7, 3072}, dt, 12);
    Tensor xc = x.clone().requires_grad_(), bc = b.clone().requires_grad_();
    Tensor xg = non_contiguous_copy(x.to(kGpu)).requires_grad_(), bg = b.to(kGpu).requires_grad_();
    Tensor yc = bias_gelu(xc, bc), yg = bias_gelu(xg, bg);
    const auto tol = dt == DType::f32 ? Tolerance{1e-5, 1e-6} : tolerance_for(dt);
    EXPECT_TRUE(all_close(yg, yc, tol));
    sum(mul(yc, g)).backward();
    sum(mul(yg, g.to(kGpu))).backward();
    EXPECT_TRUE(all_close(xg.grad(), xc.grad(), tol));
    EXPECT_TRUE(all_close(bg.grad(), bc.grad(), dt == DType::f32 ? Tolerance{1e-4, 1e-4}
                                                                 : Tolerance{2e-2, 2e-2}));
  }
}

}  // namespace
