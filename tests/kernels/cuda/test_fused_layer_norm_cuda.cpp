// CUDA residual_layer_norm against the CPU kernels: poisoned outputs through the kernel functions,
// then the public op with autograd on non-contiguous inputs; f32, bf16, f16; odd row widths.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "kernels/fused_layer_norm.h"
#include "support/cuda_compare.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::non_contiguous_copy;
using kirzl::testing::poison;
using kirzl::testing::Tolerance;
using kirzl::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);

Tensor rnd(const Shape& s, DType dt, uint64_t seed) {
  Generator gen(seed);
  return randn(s, {.dtype = DType::f32}, &gen).to(dt);
}

TEST(ResidualLayerNormCuda, KernelsMatchCpu) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (int64_t m : {1, 3, 257})
      for (int64_t n : {1, 17, 768, 1000}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " m=" + std::to_string(m) + " n=" + std::to_string(n));
        Tensor x = rnd({m, n}, dt, 1), r = rnd({m, n}, dt, 2), w = rnd({n}, dt, 3), b = rnd({n}, dt, 4);
        Tensor s_c = empty({m, n}, {.dtype = dt}), y_c = empty({m, n}, {.dtype = dt});
        Tensor mu_c = empty({m}), rs_c = empty({m});
        kernels::residual_layer_norm_forward.kernel(DeviceType::CPU)(s_c, y_c, mu_c, rs_c, x, r, w, b, n, 1e-5);

        const TensorOptions o{.dtype = dt, .device = kGpu};
        Tensor s = empty({m, n}, o), y = empty({m, n}, o);
        Tensor mu = empty({m}, {.device = kGpu}), rs = empty({m}, {.device = kGpu});
        for (Tensor* t : {&s, &y, &mu, &rs}) poison(*t);
        Tensor xd = x.to(kGpu), rd = r.to(kGpu), wd = w.to(kGpu), bd = b.to(kGpu);
        kernels::residual_layer_norm_forward.kernel(DeviceType::CUDA)(s, y, mu, rs, xd, rd, wd, bd, n, 1e-5);
        EXPECT_TRUE(all_close(s, s_c, {0, 0})) << "sum is x + residual rounded once";
        // Terms of order 1 summed (Note in test_layer_norm_cuda.cpp): absolute error of a few ulps of 1.
        EXPECT_TRUE(all_close(y, y_c, dt == DType::f32 ? Tolerance{1e-5, 1e-5} : tolerance_for(dt))) << "normed";
        EXPECT_TRUE(all_close(mu, mu_c, {1e-5, 1e-5}));
        EXPECT_TRUE(all_close(rs, rs_c, {1e-4, 1e-5}));

        Tensor gy = rnd({m, n}, dt, 5), gs = rnd({m, n}, dt, 6);
        Tensor gx_c = empty({m, n}, {.dtype = dt}), gw_c = empty({n}, {.dtype = dt}), gb_c = empty({n}, {.dtype = dt});
        kernels::residual_layer_norm_backward.kernel(DeviceType::CPU)(gx_c, gw_c, gb_c, gy, gs, s_c, mu_c, rs_c, w, n);
        Tensor gx = empty({m, n}, o), gw = empty({n}, o), gb = empty({n}, o);
        for (Tensor* t : {&gx, &gw, &gb}) poison(*t);
        kernels::residual_layer_norm_backward.kernel(DeviceType::CUDA)(gx, gw, gb, gy.to(kGpu), gs.to(kGpu), s, mu, rs, wd, n);
        // Row sums over up to 257 rows in another order: a slightly wider tolerance in f32.
        const auto tol = dt == DType::f32 ? Tolerance{1e-4, 1e-4} : tolerance_for(dt);
        EXPECT_TRUE(all_close(gx, gx_c, tol)) << "d x";
        EXPECT_TRUE(all_close(gw, gw_c, tol)) << "d weight";
        EXPECT_TRUE(all_close(gb, gb_c, tol)) << "d bias";

        // Without g_sum, weight or bias, and with only some gradients wanted.
        Tensor gx2 = empty({m, n}, o), none;
        poison(gx2);
        kernels::residual_layer_norm_backward.kernel(DeviceType::CUDA)(gx2, none, none, gy.to(kGpu), Tensor(), s, mu, rs, Tensor(), n);
        Tensor gx2_c = empty({m, n}, {.dtype = dt});
        kernels::residual_layer_norm_backward.kernel(DeviceType::CPU)(gx2_c, none, none, gy, Tensor(), s_c, mu_c, rs_c, Tensor(), n);
        EXPECT_TRUE(all_close(gx2, gx2_c, tol)) << "d x without affine and g_sum";
      }
}

TEST(ResidualLayerNormCuda, PublicOpWithAutogradOnStridedInputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16}) {
    const int64_t n = 768;
    Tensor x = rnd({4, 5, n}, dt, 10), r = rnd({4, 5, n}, dt, 11), w = rnd({n}, dt, 12), b = rnd({n}, dt, 13);
    std::vector<Tensor> cpu_in{x, r, w, b}, gpu_in;
    for (auto& t : cpu_in) {
      gpu_in.push_back(non_contiguous_copy(t.to(kGpu)).requires_grad_());
      t = t.clone().requires_grad_();
    }
    ASSERT_FALSE(gpu_in[0].is_contiguous());
    auto run = [&](std::vector<Tensor>& in, const Tensor& g1, const Tensor& g2) {
      auto o = residual_layer_norm(in[0], in[1], in[2], in[3]);
      sum(add(mul(o.sum, g1), mul(o.normed, g2))).backward();
      return o;
    };
    Tensor g1 = rnd({4, 5, n}, dt, 14), g2 = rnd({4, 5, n}, dt, 15);
    auto oc = run(cpu_in, g1, g2);
    auto og = run(gpu_in, g1.to(kGpu), g2.to(kGpu));
    EXPECT_TRUE(all_close(og.sum, oc.sum));
    EXPECT_TRUE(all_close(og.normed, oc.normed));
    const auto tol = dt == DType::f32 ? Tolerance{1e-4, 1e-4} : Tolerance{2e-2, 2e-2};
    for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(all_close(gpu_in[i].grad(), cpu_in[i].grad(), tol)) << "input " << i;
  }
}

}  // namespace
