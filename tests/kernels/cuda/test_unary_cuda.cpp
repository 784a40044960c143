// CUDA unary kernels (forward, fused backward, integer variants) and where() against the CPU
// kernels, directly into poisoned outputs and through the ops with autograd.
#include <cmath>
#include <functional>
#include <tuple>

#include "kernels/cuda/ew_test_util.hpp"
#include "kernels/unary.h"

namespace kirzl {
namespace {

using kernels::UnaryArgs;
using kernels::UnaryOp;
using namespace kirzl::testing;

struct Case {
  const char* name;
  UnaryOp op;
  UnaryArgs args;
  bool positive;  // needs x > 0 (log, sqrt, rsqrt, fractional pow)
};

const std::vector<Case>& cases() {
  static const std::vector<Case> v = {
      {"neg", UnaryOp::Neg, {}, false},          {"exp", UnaryOp::Exp, {}, false},
      {"log", UnaryOp::Log, {}, true},           {"sqrt", UnaryOp::Sqrt, {}, true},
      {"rsqrt", UnaryOp::Rsqrt, {}, true},       {"tanh", UnaryOp::Tanh, {}, false},
      {"sigmoid", UnaryOp::Sigmoid, {}, false},  {"abs", UnaryOp::Abs, {}, false},
      {"relu", UnaryOp::Relu, {}, false},        {"gelu", UnaryOp::Gelu, {}, false},
      {"gelu_tanh", UnaryOp::GeluTanh, {}, false}, {"pow2", UnaryOp::Pow, {2.0, 0}, false},
      {"pow3", UnaryOp::Pow, {3.0, 0}, false},   {"pow0.5", UnaryOp::Pow, {0.5, 0}, true},
      {"pow-1.5", UnaryOp::Pow, {-1.5, 0}, true}, {"pow0", UnaryOp::Pow, {0.0, 0}, false},
      {"clamp", UnaryOp::Clamp, {-0.5, 0.7}, false}};
  return v;
}

Tensor input_for(const Case& c, const Shape& s, DType dt, uint64_t seed) {
  Tensor x = random_cpu(s, DType::f64, seed);
  if (c.positive) x = add(abs(x), 0.1);
  return x.to(dt);
}

// Math in f32 on both sides, but libm and CUDA's libdevice differ by an ulp or two.
Tolerance unary_tol(DType dt) {
  Tolerance t = tolerance_for(dt);
  // tanh-GELU's gradient cancels terms of order 1 where it is small: a few ulps of 1 absolute.
  if (dt == DType::f32) t = {2e-5, 5e-6};
  return t;
}

TEST(UnaryCuda, ForwardEveryOpFloatDtypesOddSizes) {
  KIRZL_REQUIRE_GPU();
  for (int64_t n : std::vector<int64_t>{1, 3, 17, 257, kBig})
    for (DType dt : float_dtypes())
      for (const Case& c : cases()) {
        if (n == kBig && dt == DType::f64) continue;
        Tensor x = input_for(c, {n}, dt, 31 + n);
        Tensor expected = empty({n}, {.dtype = dt});
        kernels::unary.kernel(DeviceType::CPU)(c.op, expected, x, c.args);
        for (bool misaligned : {false, true}) {
          Tensor out = empty({n}, {.dtype = dt, .device = kGpu});
          poison(out);
          kernels::unary(c.op, out, misaligned ? misaligned_gpu(x) : x.to(kGpu), c.args);
          EXPECT_TRUE(all_close(out, expected, unary_tol(dt))) << c.name << " n=" << n << " " << name_of(dt) << " misaligned " << misaligned;
        }
      }
}

TEST(UnaryCuda, ForwardNonContiguousInput) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (const Case& c : cases()) {
      Tensor x = input_for(c, {31, 47}, dt, 5);
      Tensor expected = empty({47, 31}, {.dtype = dt});
      kernels::unary.kernel(DeviceType::CPU)(c.op, expected, x.t(), c.args);
      Tensor out = empty({47, 31}, {.dtype = dt, .device = kGpu});
      poison(out);
      kernels::unary(c.op, out, x.to(kGpu).t(), c.args);
      EXPECT_TRUE(all_close(out, expected, unary_tol(dt))) << c.name << " transposed " << name_of(dt);
      Tensor out2 = empty({31, 47}, {.dtype = dt, .device = kGpu});
      poison(out2);
      kernels::unary(c.op, out2, non_contiguous_copy(x.to(kGpu)), c.args);
      Tensor expected2 = empty({31, 47}, {.dtype = dt});
      kernels::unary.kernel(DeviceType::CPU)(c.op, expected2, x, c.args);
      EXPECT_TRUE(all_close(out2, expected2, unary_tol(dt))) << c.name << " stepped " << name_of(dt);
    }
}

TEST(UnaryCuda, IntegerVariants) {
  KIRZL_REQUIRE_GPU();
  const std::vector<std::pair<UnaryOp, UnaryArgs>> ops = {
      {UnaryOp::Neg, {}}, {UnaryOp::Abs, {}}, {UnaryOp::Relu, {}}, {UnaryOp::Clamp, {-3.5, 20.2}}, {UnaryOp::Clamp, {-1e30, 1e30}}};
  for (DType dt : {DType::i32, DType::i64, DType::u8, DType::u16})
    for (const auto& [op, args] : ops)
      for (int64_t n : std::vector<int64_t>{1, 17, kBig}) {
        const bool is_signed = dt == DType::i32 || dt == DType::i64;
        Tensor x = random_cpu({n}, dt, 41, is_signed ? -40 : 0, 60);
        Tensor expected = empty({n}, {.dtype = dt});
        kernels::unary.kernel(DeviceType::CPU)(op, expected, x, args);
        Tensor out = empty({n}, {.dtype = dt, .device = kGpu});
        poison(out);
        kernels::unary(op, out, misaligned_gpu(x), args);
        EXPECT_TRUE(all_close(out, expected)) << "op " << int(op) << " " << name_of(dt) << " n=" << n;
      }
}

TEST(UnaryCuda, NaNPropagates) {
  KIRZL_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Tensor x = from_vector<double>({nan, -inf, inf, 0.0, -0.0, 1.0, -1.0}, {7}).to(DType::f32);
  for (const Case& c : cases()) {
    Tensor expected = empty({7}, {.dtype = DType::f32});
    kernels::unary.kernel(DeviceType::CPU)(c.op, expected, x, c.args);
    Tensor out = empty({7}, {.dtype = DType::f32, .device = kGpu});
    kernels::unary(c.op, out, x.to(kGpu), c.args);
    EXPECT_TRUE(all_close(out, expected, unary_tol(DType::f32))) << c.name;
  }
}

TEST(UnaryCuda, BackwardKernelEveryOp) {
  KIRZL_REQUIRE_GPU();
  for (int64_t n : std::vector<int64_t>{1, 3, 257, kBig})
    for (DType dt : float_dtypes())
      for (const Case& c : cases()) {
        if (n == kBig && dt == DType::f64) continue;
        Tensor x = input_for(c, {n}, dt, 51);
        Tensor g = random_cpu({n}, dt, 52);
        Tensor saved = x;
        if (kernels::unary_backward_saves(c.op) == kernels::UnarySaved::Result) {
          saved = empty({n}, {.dtype = dt});
          kernels::unary.kernel(DeviceType::CPU)(c.op, saved, x, c.args);
        }
        Tensor expected = empty({n}, {.dtype = dt});
        kernels::unary_backward.kernel(DeviceType::CPU)(c.op, expected, g, saved, c.args);
        Tensor gx = empty({n}, {.dtype = dt, .device = kGpu});
        poison(gx);
        kernels::unary_backward(c.op, gx, misaligned_gpu(g), saved.to(kGpu), c.args);
        EXPECT_TRUE(all_close(gx, expected, unary_tol(dt))) << c.name << " backward n=" << n << " " << name_of(dt);
      }
}

TEST(UnaryCuda, OpsWithAutogradMatchCpu) {
  KIRZL_REQUIRE_GPU();
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> fns = {
      {"neg", [](const Tensor& t) { return neg(t); }},
      {"exp", [](const Tensor& t) { return exp(t); }},
      {"log", [](const Tensor& t) { return log(add(abs(t), 0.1)); }},
      {"sqrt", [](const Tensor& t) { return sqrt(add(abs(t), 0.1)); }},
      {"rsqrt", [](const Tensor& t) { return rsqrt(add(abs(t), 0.1)); }},
      {"tanh", [](const Tensor& t) { return tanh(t); }},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"abs", [](const Tensor& t) { return abs(t); }},
      {"relu", [](const Tensor& t) { return relu(t); }},
      {"gelu", [](const Tensor& t) { return gelu(t); }},
      {"gelu_tanh", [](const Tensor& t) { return gelu(t, GeluApproximation::Tanh); }},
      {"pow", [](const Tensor& t) { return pow(t, 3.0); }},
      {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.7); }}};
  for (DType dt : {DType::f32, DType::bf16})
    for (const auto& [name, fn] : fns)
      for (const Shape& s : {Shape{1}, Shape{17, 33}, Shape{kBig}}) {
        Tensor x = random_cpu(s, dt, 61);
        Tensor xc = x.clone().requires_grad_(true);
        Tensor xg = x.to(kGpu).requires_grad_(true);
        Tensor yc = fn(xc), yg = fn(xg);
        Tensor g = random_cpu(yc.shape(), dt, 62);
        yc.backward(g);
        yg.backward(g.to(kGpu));
        EXPECT_TRUE(all_close(yg, yc, unary_tol(dt))) << name << " " << s.str() << " " << name_of(dt);
        EXPECT_TRUE(all_close(xg.grad(), xc.grad(), unary_tol(dt))) << name << " grad " << s.str() << " " << name_of(dt);
      }
}

TEST(WhereCuda, KernelBroadcastingAndStrides) {
  KIRZL_REQUIRE_GPU();
  const std::vector<std::tuple<Shape, Shape, Shape>> shapes = {
      {{3, 1, 5}, {1, 4, 1}, {}}, {{kBig}, {kBig}, {kBig}}, {{17}, {9, 17}, {9, 1}}, {{}, {257}, {257}}};
  for (DType dt : all_dtypes())
    for (const auto& [sc, sa, sb] : shapes) {
      Tensor cond = random_cpu(sc, DType::u8, 71, 0, 2);
      Tensor a = random_cpu(sa, dt, 72), b = random_cpu(sb, dt, 73);
      const Shape shape = broadcast_shapes(broadcast_shapes(sc, sa, "t"), sb, "t");
      Tensor expected = empty(shape, {.dtype = dt});
      kernels::where.kernel(DeviceType::CPU)(expected, cond, a, b);
      for (bool strided : {false, true}) {
        Tensor out = poisoned_out(shape, dt, strided);
        kernels::where(out, cond.to(kGpu), a.numel() > 1 ? misaligned_gpu(a) : a.to(kGpu), b.to(kGpu));
        EXPECT_TRUE(all_close(out, expected)) << sc.str() << " " << sa.str() << " " << sb.str() << " " << name_of(dt);
      }
    }
}

TEST(WhereCuda, OpWithAutogradMatchesCpu) {
  KIRZL_REQUIRE_GPU();
  Tensor x = random_cpu({6, 1, 7}, DType::f32, 81), y = random_cpu({5, 1}, DType::f32, 82);
  Tensor cond_src = random_cpu({6, 5, 7}, DType::f32, 83);
  Tensor xc = x.clone().requires_grad_(true), yc = y.clone().requires_grad_(true);
  Tensor xg = x.to(kGpu).requires_grad_(true), yg = y.to(kGpu).requires_grad_(true);
  Tensor oc = where(cond_src, xc, yc);  // any nonzero is true (goes through ne on the device)
  Tensor og = where(cond_src.to(kGpu), xg, yg);
  Tensor g = random_cpu(oc.shape(), DType::f32, 84);
  oc.backward(g);
  og.backward(g.to(kGpu));
  EXPECT_TRUE(all_close(og, oc));
  EXPECT_TRUE(all_close(xg.grad(), xc.grad()));
  EXPECT_TRUE(all_close(yg.grad(), yc.grad()));
  Tensor mc = masked_fill(x, gt(x, zeros_like(x)), -7.0), mg = masked_fill(x.to(kGpu), gt(x.to(kGpu), zeros_like(x).to(kGpu)), -7.0);
  EXPECT_TRUE(all_close(mg, mc));
}

}  // namespace
}  // namespace kirzl
