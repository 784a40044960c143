// CUDA batch norm kernels against the CPU kernels on the same inputs: statistics, forward,
// backward in training and eval mode (every subset of requested gradients), odd sizes up to a
// million values per channel, bit-for-bit determinism, the public op with running statistics and
// autograd, and errors.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>
#include <vector>

#include "kernels/batch_norm.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::poison;
using kirzl::testing::Tolerance;
using kirzl::testing::tolerance_for;

namespace {

const Device kCuda = Device::cuda(0);

// Values with a non-zero mean, rounded to dt on the CPU so both sides see the same inputs.
Tensor rnd(const Shape& s, DType dt, double lo = -2.0, double hi = 4.0) {
  return uniform(s, lo, hi, {.dtype = DType::f64}).to(dt);
}
Tensor channel_f64(int64_t C, double lo, double hi) { return uniform({C}, lo, hi, {.dtype = DType::f64}); }
Tensor cuda_like(const Tensor& t) { return t.defined() ? t.to(kCuda) : Tensor(); }
Tensor poisoned_cuda(const Shape& s, DType dt) {
  Tensor t = empty(s, {.dtype = dt, .device = kCuda});
  poison(t);
  return t;
}

// f64 sums in a different order on each side: relative ~1e-13 at a million terms.
constexpr Tolerance kStatsTol{1e-10, 1e-10};
// Parameter gradients are sums of up to 1e6 products of O(1) values; they may cancel to ~0.
constexpr Tolerance kParamGradTol{1e-9, 1e-7};

const std::vector<Shape> kShapes = {{2, 3, 5, 7}, {4, 5}, {17, 4, 1, 1}, {3, 257, 1, 3}, {64, 16, 8, 8}, {1, 3, 1000003}};

class BatchNormDTypeTest : public ::testing::TestWithParam<DType> {};

TEST_P(BatchNormDTypeTest, StatsAndForwardAgainstCpu) {
  KIRZL_REQUIRE_GPU();
  manual_seed(1);
  const DType dt = GetParam();
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(Tensor(empty(s)).describe() + " " + dtype_name(dt));
    Tensor x = rnd(s, dt);
    const int64_t C = s[1];
    Tensor mean = empty({C}, {.dtype = DType::f64}), var = empty({C}, {.dtype = DType::f64});
    kernels::batch_norm_stats.kernel(DeviceType::CPU)(mean, var, x);
    Tensor mean_d = poisoned_cuda({C}, DType::f64), var_d = poisoned_cuda({C}, DType::f64);
    Tensor xd = x.to(kCuda);
    kernels::batch_norm_stats(mean_d, var_d, xd);
    EXPECT_TRUE(all_close(mean_d, mean, kStatsTol)) << "mean";
    EXPECT_TRUE(all_close(var_d, var, kStatsTol)) << "var";

    Tensor w = channel_f64(C, 0.5, 1.5), b = channel_f64(C, -1, 1);
    for (bool affine : {true, false}) {
      Tensor wa = affine ? w : Tensor(), ba = affine ? b : Tensor();
      Tensor y = empty(s, {.dtype = dt});
      kernels::batch_norm_forward.kernel(DeviceType::CPU)(y, x, mean, var, wa, ba, 1e-5);
      Tensor yd = poisoned_cuda(s, dt);
      kernels::batch_norm_forward(yd, xd, mean.to(kCuda), var.to(kCuda), cuda_like(wa), cuda_like(ba), 1e-5);
      EXPECT_TRUE(all_close(yd, y)) << (affine ? "forward (affine)" : "forward");
    }
  }
}

TEST_P(BatchNormDTypeTest, BackwardAgainstCpu) {
  KIRZL_REQUIRE_GPU();
  manual_seed(2);
  const DType dt = GetParam();
  for (const Shape& s : kShapes) {
    const int64_t C = s[1];
    Tensor x = rnd(s, dt), g = rnd(s, dt, -1.0, 1.0);
    Tensor mean = empty({C}, {.dtype = DType::f64}), var = empty({C}, {.dtype = DType::f64});
    kernels::batch_norm_stats.kernel(DeviceType::CPU)(mean, var, x);
    Tensor w = channel_f64(C, 0.5, 1.5);
    Tensor xd = x.to(kCuda), gd = g.to(kCuda), md = mean.to(kCuda), vd = var.to(kCuda);
    for (bool training : {true, false})
      for (bool affine : {true, false})
        for (int mask = 1; mask < 8; ++mask) {  // which of grad_x, grad_weight, grad_bias are requested
          SCOPED_TRACE(::testing::Message() << Tensor(empty(s)).describe() << " " << dtype_name(dt)
                                            << (training ? " training" : " eval") << (affine ? " affine" : "")
                                            << " mask " << mask);
          const bool want_x = mask & 1, want_w = mask & 2, want_b = mask & 4;
          Tensor wa = affine ? w : Tensor();
          Tensor gx = want_x ? empty(s, {.dtype = dt}) : Tensor();
          Tensor gw = want_w ? empty({C}, {.dtype = DType::f64}) : Tensor();
          Tensor gb = want_b ? empty({C}, {.dtype = DType::f64}) : Tensor();
          kernels::batch_norm_backward.kernel(DeviceType::CPU)(gx, gw, gb, g, x, mean, var, wa, 1e-5, training);
          Tensor gxd = want_x ? poisoned_cuda(s, dt) : Tensor();
          Tensor gwd = want_w ? poisoned_cuda({C}, DType::f64) : Tensor();
          Tensor gbd = want_b ? poisoned_cuda({C}, DType::f64) : Tensor();
          kernels::batch_norm_backward(gxd, gwd, gbd, gd, xd, md, vd, cuda_like(wa), 1e-5, training);
          if (want_x) {
            EXPECT_TRUE(all_close(gxd, gx)) << "grad_x";
          }
          if (want_w) {
            EXPECT_TRUE(all_close(gwd, gw, kParamGradTol)) << "grad_weight";
          }
          if (want_b) {
            EXPECT_TRUE(all_close(gbd, gb, kParamGradTol)) << "grad_bias";
          }
        }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, BatchNormDTypeTest,
                         ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(BatchNormCuda, SameInputsGiveTheSameBits) {
  KIRZL_REQUIRE_GPU();
  manual_seed(3);
  const Shape s{1, 3, 1000003};
  Tensor x = rnd(s, DType::f32).to(kCuda), g = rnd(s, DType::f32, -1, 1).to(kCuda);
  auto run = [&] {
    Tensor mean = poisoned_cuda({3}, DType::f64), var = poisoned_cuda({3}, DType::f64);
    kernels::batch_norm_stats(mean, var, x);
    Tensor gx = poisoned_cuda(s, DType::f32), gw = poisoned_cuda({3}, DType::f64), gb = poisoned_cuda({3}, DType::f64);
    kernels::batch_norm_backward(gx, gw, gb, g, x, mean, var, Tensor(), 1e-5, true);
    auto v = mean.to(Device::cpu()).to_vector<double>();
    for (const Tensor& t : {var, gw, gb}) {
      auto tv = t.to(Device::cpu()).to_vector<double>();
      v.insert(v.end(), tv.begin(), tv.end());
    }
    auto gxv = gx.to(Device::cpu()).to(DType::f64).to_vector<double>();
    v.insert(v.end(), gxv.begin(), gxv.end());
    return v;
  };
  EXPECT_EQ(run(), run());
}

// The public op: batch statistics, running-statistic update, eval mode and autograd, against the
// same op on the CPU.
TEST(BatchNormCuda, OpTrainEvalForwardBackward) {
  KIRZL_REQUIRE_GPU();
  manual_seed(4);
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Shape s{6, 5, 7, 3};
    Tensor x = rnd(s, dt);
    Tensor w = uniform({5}, 0.5, 1.5), b = uniform({5}, -1, 1);  // f32 parameters, as BatchNorm2d keeps them
    Tensor rm = zeros({5}), rv = ones({5});
    Tensor g = rnd(s, dt, -1, 1);
    for (bool training : {true, false}) {
      SCOPED_TRACE(training ? "training" : "eval");
      Tensor xc = x.clone().requires_grad_(), wc = w.clone().requires_grad_(), bc = b.clone().requires_grad_();
      Tensor rmc = rm.clone(), rvc = rv.clone();
      Tensor yc = batch_norm(xc, rmc, rvc, wc, bc, training, 0.1, 1e-5);
      yc.backward(g);

      Tensor xd = x.to(kCuda).requires_grad_(), wd = w.to(kCuda).requires_grad_(), bd = b.to(kCuda).requires_grad_();
      Tensor rmd = rm.to(kCuda), rvd = rv.to(kCuda);
      Tensor yd = batch_norm(xd, rmd, rvd, wd, bd, training, 0.1, 1e-5);
      ASSERT_EQ(yd.device(), kCuda);
      yd.backward(g.to(kCuda));

      EXPECT_TRUE(all_close(yd, yc)) << "y";
      EXPECT_TRUE(all_close(rmd, rmc)) << "running_mean";
      EXPECT_TRUE(all_close(rvd, rvc)) << "running_var";
      EXPECT_TRUE(all_close(xd.grad(), xc.grad())) << "grad x";
      EXPECT_TRUE(all_close(wd.grad(), wc.grad(), {1e-5, 1e-5})) << "grad weight";
      EXPECT_TRUE(all_close(bd.grad(), bc.grad(), {1e-5, 1e-5})) << "grad bias";
    }
  }
}

TEST(BatchNormCuda, ErrorsOnDeviceMismatch) {
  KIRZL_REQUIRE_GPU();
  Tensor x = rnd({4, 3, 2, 2}, DType::f32).to(kCuda);
  EXPECT_KIRZL_ERROR(batch_norm(x, zeros({3}), ones({3}).to(kCuda), Tensor(), Tensor(), true, 0.1, 1e-5),
                     ErrorCode::InvalidArgument, "batch_norm", "device");
  EXPECT_KIRZL_ERROR(batch_norm(x, Tensor(), Tensor(), ones({3}), Tensor(), true, 0.1, 1e-5),
                     ErrorCode::InvalidArgument, "batch_norm", "device");
  // The kernel itself with statistics of the wrong dtype.
  Tensor mean = zeros({3}, {.device = kCuda}), var = ones({3}, {.device = kCuda});
  Tensor y = empty(x.shape(), {.device = kCuda});
  EXPECT_KIRZL_ERROR(kernels::batch_norm_forward(y, x, mean, var, Tensor(), Tensor(), 1e-5), ErrorCode::InvalidArgument,
                     "batch_norm", "f64");
}

}  // namespace
