// CUDA conv2d (cuDNN) against a float64 CPU reference: forward, input and weight gradients, over
// stride / padding / dilation / groups and odd sizes, f32 / bf16 / f16 / f64, TF32, the public
// op with autograd, and errors.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>
#include <vector>

#include "kernels/conv.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"
#include "support/scaled_compare.hpp"

using namespace kirzl;
using kirzl::testing::close_scaled;
using kirzl::testing::poison;

namespace {

const Device kCuda = Device::cuda(0);

Tensor rnd(const Shape& s, DType dt) { return uniform(s, -1.0, 1.0, {.dtype = DType::f64}).to(dt); }
Tensor cpu64(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::f64).contiguous(); }

// Relative to Σ|x||w| per output (see support/scaled_compare.hpp).
double rtol_for(DType dt) {
  switch (dt) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    default: return 1e-2;
  }
}

struct Case {
  int64_t N, C, H, W, Cout, kh, kw;
  Conv2dOptions o;
};

const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1, 1, 1, {}},
    {2, 3, 17, 19, 5, 3, 3, {.padding = {1, 1}}},
    {3, 4, 9, 7, 6, 3, 2, {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2}},
    {2, 6, 11, 11, 6, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 6}},  // depthwise
    {2, 8, 5, 5, 4, 1, 1, {}},                                                   // 1x1
    {1, 3, 13, 10, 7, 5, 3, {.stride = {3, 2}, .padding = {2, 0}, .dilation = {2, 1}}},
    {8, 32, 28, 28, 64, 3, 3, {.padding = {1, 1}}},  // a CNN layer
};

kernels::Conv2dGeometry geometry(const Case& c) {
  kernels::Conv2dGeometry g{};
  g.N = c.N, g.C = c.C, g.H = c.H, g.W = c.W, g.Cout = c.Cout, g.kh = c.kh, g.kw = c.kw;
  g.sh = c.o.stride[0], g.sw = c.o.stride[1], g.ph = c.o.padding[0], g.pw = c.o.padding[1];
  g.dh = c.o.dilation[0], g.dw = c.o.dilation[1], g.groups = c.o.groups;
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

std::string name(const Case& c) {
  return ::testing::PrintToString(std::vector<int64_t>{c.N, c.C, c.H, c.W, c.Cout, c.kh, c.kw, c.o.stride[0],
                                                       c.o.stride[1], c.o.padding[0], c.o.padding[1],
                                                       c.o.dilation[0], c.o.dilation[1], c.o.groups});
}

Tensor empty_cuda(const Shape& s, DType dt) {
  Tensor t = empty(s, {.dtype = dt, .device = kCuda});
  poison(t);
  return t;
}

// The three kernels called directly with poisoned outputs, against the CPU kernels in f64.
void check_kernels(const Case& c, DType dt, double rtol) {
  SCOPED_TRACE(name(c) + " " + dtype_name(dt));
  const kernels::Conv2dGeometry g = geometry(c);
  Tensor x = rnd({g.N, g.C, g.H, g.W}, dt), w = rnd({g.Cout, g.C / g.groups, g.kh, g.kw}, dt), b = rnd({g.Cout}, dt);
  Tensor go = rnd({g.N, g.Cout, g.Ho, g.Wo}, dt);
  Tensor x64 = cpu64(x), w64 = cpu64(w), b64 = cpu64(b), go64 = cpu64(go);
  Tensor ax = abs(x64), aw = abs(w64), ab = abs(b64), ago = abs(go64);
  auto f64_like = [](const Shape& s) { return empty(s, {.dtype = DType::f64}); };

  for (bool with_bias : {false, true}) {
    Tensor y = empty_cuda({g.N, g.Cout, g.Ho, g.Wo}, dt);
    kernels::conv2d_forward(y, x.to(kCuda), w.to(kCuda), with_bias ? b.to(kCuda) : Tensor(), g);
    Tensor ref = f64_like(y.shape()), scale = f64_like(y.shape());
    kernels::conv2d_forward(ref, x64, w64, with_bias ? b64 : Tensor(), g);
    kernels::conv2d_forward(scale, ax, aw, with_bias ? ab : Tensor(), g);
    EXPECT_TRUE(close_scaled(y, ref, scale, rtol)) << "forward" << (with_bias ? " with bias" : "");
  }
  {
    Tensor gx = empty_cuda(x.shape(), dt);
    kernels::conv2d_backward_input(gx, go.to(kCuda), w.to(kCuda), g);
    Tensor ref = f64_like(x.shape()), scale = f64_like(x.shape());
    kernels::conv2d_backward_input(ref, go64, w64, g);
    kernels::conv2d_backward_input(scale, ago, aw, g);
    EXPECT_TRUE(close_scaled(gx, ref, scale, rtol)) << "backward (input)";
  }
  {
    Tensor gw = empty_cuda(w.shape(), dt);
    kernels::conv2d_backward_weight(gw, go.to(kCuda), x.to(kCuda), g);
    Tensor ref = f64_like(w.shape()), scale = f64_like(w.shape());
    kernels::conv2d_backward_weight(ref, go64, x64, g);
    kernels::conv2d_backward_weight(scale, ago, ax, g);
    EXPECT_TRUE(close_scaled(gw, ref, scale, rtol)) << "backward (weight)";
  }
}

class ConvDTypeTest : public ::testing::TestWithParam<DType> {};

TEST_P(ConvDTypeTest, KernelsAgainstCpu) {
  KIRZL_REQUIRE_GPU();
  manual_seed(1);
  for (const Case& c : kCases) check_kernels(c, GetParam(), rtol_for(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Floating, ConvDTypeTest, ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(ConvCuda, Tf32InsideTheGuard) {
  KIRZL_REQUIRE_GPU();
  manual_seed(2);
  AllowTF32Guard tf32;
  for (const Case& c : kCases) check_kernels(c, DType::f32, 1e-2);
}

TEST(ConvCuda, SameInputsGiveTheSameBits) {
  KIRZL_REQUIRE_GPU();
  manual_seed(3);
  const Case c = kCases.back();
  const kernels::Conv2dGeometry g = geometry(c);
  Tensor x = rnd({g.N, g.C, g.H, g.W}, DType::f32).to(kCuda);
  Tensor go = rnd({g.N, g.Cout, g.Ho, g.Wo}, DType::f32).to(kCuda);
  Tensor w = rnd({g.Cout, g.C, g.kh, g.kw}, DType::f32).to(kCuda);
  auto weight_grad = [&] {
    Tensor gw = empty_cuda({g.Cout, g.C, g.kh, g.kw}, DType::f32);
    kernels::conv2d_backward_weight(gw, go, x, g);
    return gw.to(Device::cpu()).to_vector<float>();
  };
  auto input_grad = [&] {
    Tensor gx = empty_cuda(x.shape(), DType::f32);
    kernels::conv2d_backward_input(gx, go, w, g);
    return gx.to(Device::cpu()).to_vector<float>();
  };
  EXPECT_EQ(weight_grad(), weight_grad());
  EXPECT_EQ(input_grad(), input_grad());
}

TEST(ConvCuda, OpForwardBackwardAgainstCpu) {
  KIRZL_REQUIRE_GPU();
  manual_seed(4);
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Case& c : {kCases[1], kCases[2], kCases[3]}) {
      SCOPED_TRACE(name(c) + " " + dtype_name(dt));
      // A non-contiguous input (a channel slice) exercises the op's contiguous() before cuDNN.
      Tensor x_wide = rnd({c.N, c.C + 2, c.H, c.W}, dt).to(kCuda);
      Tensor x = x_wide.slice(1, 1, c.C + 1).detach().requires_grad_();
      Tensor w = rnd({c.Cout, c.C / c.o.groups, c.kh, c.kw}, dt).to(kCuda).requires_grad_();
      Tensor b = rnd({c.Cout}, dt).to(kCuda).requires_grad_();
      Tensor y = conv2d(x, w, b, c.o);
      Tensor g = rnd(y.shape(), dt);
      y.backward(g.to(kCuda));

      Tensor x64 = cpu64(x).requires_grad_(), w64 = cpu64(w).requires_grad_(), b64 = cpu64(b).requires_grad_();
      Tensor y64 = conv2d(x64, w64, b64, c.o);
      y64.backward(g.to(DType::f64));
      Tensor ax = abs(cpu64(x)).requires_grad_(), aw = abs(cpu64(w)).requires_grad_(),
             ab = abs(cpu64(b)).requires_grad_();
      Tensor ys = conv2d(ax, aw, ab, c.o);
      ys.backward(abs(g.to(DType::f64)));
      const double rtol = rtol_for(dt);
      EXPECT_TRUE(close_scaled(y, y64.detach(), ys.detach(), rtol));
      EXPECT_TRUE(close_scaled(x.grad(), x64.grad(), ax.grad(), rtol));
      EXPECT_TRUE(close_scaled(w.grad(), w64.grad(), aw.grad(), rtol));
      EXPECT_TRUE(close_scaled(b.grad(), b64.grad(), ab.grad(), rtol));
    }
  }
}

TEST(ConvCuda, UnbatchedInput) {
  KIRZL_REQUIRE_GPU();
  manual_seed(5);
  Tensor x = rnd({3, 8, 9}, DType::f32), w = rnd({4, 3, 3, 3}, DType::f32);
  Tensor y = conv2d(x.to(kCuda), w.to(kCuda), Tensor(), {.padding = {1, 1}});
  Tensor y64 = conv2d(cpu64(x), cpu64(w), Tensor(), {.padding = {1, 1}});
  Tensor s = conv2d(abs(cpu64(x)), abs(cpu64(w)), Tensor(), {.padding = {1, 1}});
  EXPECT_TRUE(close_scaled(y, y64, s, 1e-5));
}

TEST(ConvCuda, ErrorsOnDtypeAndDeviceMismatch) {
  KIRZL_REQUIRE_GPU();
  Tensor x = rnd({1, 3, 8, 8}, DType::f32).to(kCuda);
  Tensor w16 = rnd({4, 3, 3, 3}, DType::bf16).to(kCuda);
  Tensor w_cpu = rnd({4, 3, 3, 3}, DType::f32);
  EXPECT_KIRZL_ERROR(conv2d(x, w16, Tensor(), {}), ErrorCode::InvalidArgument, "conv2d", "dtype");
  EXPECT_KIRZL_ERROR(conv2d(x, w_cpu, Tensor(), {}), ErrorCode::InvalidArgument, "conv2d", "device");
  Tensor w = w_cpu.to(kCuda);
  EXPECT_KIRZL_ERROR(conv2d(x, w, rnd({4}, DType::f32), {}), ErrorCode::InvalidArgument, "conv2d", "device");
  // The kernel itself with a non-contiguous input.
  const kernels::Conv2dGeometry g = geometry({1, 3, 8, 8, 4, 3, 3, {}});
  Tensor y = empty({1, 4, 6, 6}, {.device = kCuda});
  Tensor x_nc = rnd({1, 3, 8, 16}, DType::f32).to(kCuda).slice(3, 0, 16, 2);
  EXPECT_KIRZL_ERROR(kernels::conv2d_forward(y, x_nc, w, Tensor(), g), ErrorCode::InvalidArgument, "conv2d",
                     "contiguous");
}

}  // namespace
