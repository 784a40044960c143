// CUDA max / avg pool2d against the CPU kernels over a geometry sweep (the 2x2 stride-2 pool,
// overlapping windows, padding, rectangular kernels and strides, odd sizes), with ties and NaN
// (max indices must match exactly), poisoned outputs, and the public ops through autograd.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kernels/cuda/nn_cuda_test_util.hpp"
#include "kernels/pool.h"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

struct Geo {
  int64_t H, W, kh, kw, sh, sw, ph, pw;
};

const Geo kGeos[] = {
    {8, 8, 2, 2, 2, 2, 0, 0},    // the common CNN pool
    {7, 9, 2, 2, 2, 2, 0, 0},    // odd sizes: last row/col dropped
    {7, 9, 3, 3, 1, 1, 1, 1},    // overlapping, padded
    {17, 5, 3, 2, 2, 1, 1, 0},   // rectangular kernel and stride
    {5, 5, 5, 5, 1, 1, 2, 2},    // windows far over the border
    {1, 1, 1, 1, 1, 1, 0, 0},    // one pixel
    {13, 11, 4, 3, 3, 2, 2, 1},  // stride < kernel in one dim, padding in both
};

kernels::Pool2dGeometry geometry(const Geo& g, int64_t planes) {
  kernels::Pool2dGeometry k{};
  k.planes = planes;
  k.H = g.H;
  k.W = g.W;
  k.kh = g.kh;
  k.kw = g.kw;
  k.sh = g.sh;
  k.sw = g.sw;
  k.ph = g.ph;
  k.pw = g.pw;
  k.Ho = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  k.Wo = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return k;
}

std::string str(const Geo& g) {
  return std::to_string(g.H) + "x" + std::to_string(g.W) + " k" + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
         " s" + std::to_string(g.sh) + "x" + std::to_string(g.sw) + " p" + std::to_string(g.ph) + "x" +
         std::to_string(g.pw);
}

// Small integers so that windows hold ties; a NaN in plane 0 when `with_nan`.
Tensor pool_input(int64_t planes, const Geo& g, DType dt, bool with_nan) {
  Tensor x = cpu_uniform({planes, g.H, g.W}, DType::f64, -4, 4).to(DType::i64).to(dt);
  if (with_nan && g.H * g.W > 3) x.reshape({planes * g.H * g.W}).slice(0, 3, 4).fill_(std::numeric_limits<double>::quiet_NaN());
  return x;
}

}  // namespace

TEST(PoolCuda, MaxPoolKernelsMatchCpuIncludingIndices) {
  KIRZL_REQUIRE_GPU();
  const int64_t planes = 6;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Geo& geo : kGeos)
      for (bool with_nan : {false, true}) {
        SCOPED_TRACE(str(geo) + " " + dtype_name(dt) + (with_nan ? " NaN" : ""));
        const kernels::Pool2dGeometry g = geometry(geo, planes);
        Tensor x = pool_input(planes, geo, dt, with_nan);
        Tensor out_ref = empty({planes, g.Ho, g.Wo}, {.dtype = dt});
        Tensor idx_ref = empty({planes, g.Ho, g.Wo}, {.dtype = DType::i64});
        kernels::max_pool2d_forward.kernel(DeviceType::CPU)(out_ref, idx_ref, x, g);
        Tensor out = empty({planes, g.Ho, g.Wo}, {.dtype = dt, .device = gpu()});
        Tensor idx = empty({planes, g.Ho, g.Wo}, {.dtype = DType::i64, .device = gpu()});
        poison(out);
        poison(idx);
        kernels::max_pool2d_forward(out, idx, x.to(gpu()), g);
        EXPECT_TRUE(bitwise_equal(idx, idx_ref)) << "indices";
        EXPECT_TRUE(all_close(out, out_ref)) << "values";
        // Without indices wanted.
        Tensor out2 = empty({planes, g.Ho, g.Wo}, {.dtype = dt, .device = gpu()});
        Tensor none;
        poison(out2);
        kernels::max_pool2d_forward(out2, none, x.to(gpu()), g);
        EXPECT_TRUE(all_close(out2, out_ref)) << "values without indices";

        Tensor go = cpu_uniform({planes, g.Ho, g.Wo}, dt, -1, 1, 5);
        // f32 reference: the CPU rounds to the 16-bit type after every addition, the GPU once;
        // both add in increasing output order, so f32 sums agree exactly.
        Tensor gx_ref = empty({planes, g.H, g.W}, {.dtype = DType::f32});
        kernels::max_pool2d_backward.kernel(DeviceType::CPU)(gx_ref, go.to(DType::f32), idx_ref, g);
        Tensor gx = empty({planes, g.H, g.W}, {.dtype = dt, .device = gpu()});
        poison(gx);
        kernels::max_pool2d_backward(gx, go.to(gpu()), idx, g);
        if (!kNnDryRun || dt == DType::f32) {
          EXPECT_TRUE(bitwise_equal(gx, gx_ref.to(dt))) << "backward";
        }
      }
}

TEST(PoolCuda, AvgPoolKernelsMatchCpu) {
  KIRZL_REQUIRE_GPU();
  const int64_t planes = 5;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Geo& geo : kGeos)
      for (bool include_pad : {true, false}) {
        SCOPED_TRACE(str(geo) + " " + dtype_name(dt) + (include_pad ? " include_pad" : ""));
        const kernels::Pool2dGeometry g = geometry(geo, planes);
        Tensor x = cpu_uniform({planes, geo.H, geo.W}, dt);
        Tensor ref = empty({planes, g.Ho, g.Wo}, {.dtype = dt});
        kernels::avg_pool2d_forward.kernel(DeviceType::CPU)(ref, x, g, include_pad);
        Tensor out = empty({planes, g.Ho, g.Wo}, {.dtype = dt, .device = gpu()});
        poison(out);
        kernels::avg_pool2d_forward(out, x.to(gpu()), g, include_pad);
        EXPECT_TRUE(all_close(out, ref)) << "forward";

        Tensor go = cpu_uniform({planes, g.Ho, g.Wo}, dt, -1, 1, 5);
        // f32 reference for the backward: the CPU adds into the (16-bit) output once per window,
        // the GPU sums in f32 and rounds once.
        Tensor gx_ref = empty({planes, geo.H, geo.W}, {.dtype = DType::f32});
        kernels::avg_pool2d_backward.kernel(DeviceType::CPU)(gx_ref, go.to(DType::f32), g, include_pad);
        Tensor gx = empty({planes, geo.H, geo.W}, {.dtype = dt, .device = gpu()});
        poison(gx);
        kernels::avg_pool2d_backward(gx, go.to(gpu()), g, include_pad);
        EXPECT_TRUE(all_close(gx, gx_ref.to(dt), dt == DType::f32 ? Tolerance{1e-5, 1e-6} : tolerance_for(dt)))
            << "backward";
      }
}

TEST(PoolCuda, PublicOpsThroughAutograd) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (bool nc : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (nc ? " non-contiguous" : ""));
      const Pool2dOptions o{.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .count_include_pad = false};
      // Ties (likely in bf16) are broken alike on both devices: the first maximum in scan order.
      Tensor x = cpu_uniform({2, 3, 11, 9}, dt);
      expect_op_matches_cpu([&](const std::vector<Tensor>& xs, Device) { return max_pool2d(xs[0], o); }, {x},
                            tolerance_for(dt), nc);
      expect_op_matches_cpu([&](const std::vector<Tensor>& xs, Device) { return avg_pool2d(xs[0], o); }, {x},
                            tolerance_for(dt), nc);
    }
}
