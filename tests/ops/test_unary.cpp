// Unary elementwise ops: values against hand-computed numbers, gradients, dtypes, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;

namespace {

using UnaryFn = Tensor (*)(const Tensor&);

void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size()) << t.describe();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol * (1 + std::abs(expected[i]))) << "element " << i;
}

Tensor vec(const std::vector<double>& v) { return from_vector<double>(v); }

// A leaf with values away from the non-differentiable points of abs/relu/clamp.
Tensor away_from(double point, const Shape& shape, uint64_t seed) {
  Tensor r = rand_input(shape, seed, 0.1, 1.0).detach();
  Tensor sign = rand_input(shape, seed + 1).detach();
  Tensor x = add(where(gt(sign, scalar_tensor(0.0, {.dtype = DType::f64})), r, neg(r)), point);
  return x.requires_grad_();
}

Tensor gelu_tanh(const Tensor& x) { return gelu(x, GeluApproximation::Tanh); }
Tensor gelu_erf(const Tensor& x) { return gelu(x); }
Tensor pow3(const Tensor& x) { return pow(x, 3.0); }
Tensor pow_frac(const Tensor& x) { return pow(x, -1.5); }
Tensor clamp_mid(const Tensor& x) { return clamp(x, -0.5, 0.5); }

}  // namespace

TEST(Unary, ForwardValues) {
  expect_values(neg(vec({1, -2, 0})), {-1, 2, 0});
  expect_values(exp(vec({0, 1, -1, 2})), {1, 2.718281828459045, 0.36787944117144233, 7.38905609893065});
  expect_values(log(vec({1, 2.718281828459045, 10})), {0, 1, 2.302585092994046});
  expect_values(sqrt(vec({0, 4, 2})), {0, 2, 1.4142135623730951});
  expect_values(rsqrt(vec({4, 0.25})), {0.5, 2});
  expect_values(tanh(vec({0, 1, -2})), {0, 0.7615941559557649, -0.9640275800758169});
  expect_values(sigmoid(vec({0, 2, -2})), {0.5, 0.8807970779778823, 0.11920292202211755});
  expect_values(sigmoid(vec({-1000, 1000})), {0, 1});
  expect_values(abs(vec({-3, 0, 2.5})), {3, 0, 2.5});
  expect_values(relu(vec({-3, 0, 2.5})), {0, 0, 2.5});
  expect_values(pow(vec({2, 3, -2}), 3.0), {8, 27, -8});
  expect_values(pow(vec({4, 9}), 0.5), {2, 3});
  expect_values(pow(vec({2, -4}), 2.0), {4, 16});
  expect_values(pow(vec({2, 4}), -1.0), {0.5, 0.25});
  expect_values(pow(vec({2, 0}), 0.0), {1, 1});
  expect_values(gelu(vec({1, -1, 2, -3})), {0.8413447460685429, -0.15865525393145707, 1.9544997361036416, -0.00404969409489031});
  expect_values(gelu(vec({1, -1, 2, -3}), GeluApproximation::Tanh),
                {0.8411919906082768, -0.15880800939172324, 1.954597694087775, -0.0036373920817729943});
  expect_values(clamp(vec({-2, -0.5, 0.3, 7}), -1, 1), {-1, -0.5, 0.3, 1});
  expect_values(clamp(vec({-2, 3}), 0), {0, 3});
  expect_values(clamp(vec({-2, 3}), -std::numeric_limits<double>::infinity(), 1), {-2, 1});
}

TEST(Unary, ResultsAreNewContiguousTensors) {
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = exp(x.t());
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_EQ(y.dtype(), DType::f32);
  std::vector<float> v = y.to_vector<float>();
  std::vector<float> want{1, 4, 2, 5, 3, 6};
  for (size_t i = 0; i < v.size(); ++i) EXPECT_FLOAT_EQ(v[i], std::exp(want[i]));
  EXPECT_EQ(exp(zeros({0, 3})).shape(), (Shape{0, 3}));
  EXPECT_DOUBLE_EQ(exp(scalar_tensor(0.0)).item(), 1.0);
}

TEST(Unary, StridedAndBroadcastInputs) {
  // A stepped slice and an expanded (stride 0) view go through the strided loop.
  Tensor base = arange(0, 12, 1, {.dtype = DType::f64}).reshape({3, 4});
  expect_values(neg(base.slice(1, 0, 4, 2)), {0, -2, -4, -6, -8, -10});
  expect_values(sqrt(from_vector<double>({4}).expand({2, 3})), {2, 2, 2, 2, 2, 2});
}

TEST(Unary, LargeTensorMatchesStd) {
  // Large enough to take the multi-threaded path.
  const int64_t n = 200003;
  Tensor x = uniform({n}, -5, 5, {.dtype = DType::f32});
  std::vector<float> xv = x.to_vector<float>();
  std::vector<float> e = exp(x).to_vector<float>(), t = tanh(x).to_vector<float>(), r = relu(x).to_vector<float>();
  for (int64_t i = 0; i < n; i += 997) {
    EXPECT_FLOAT_EQ(e[i], std::exp(xv[i]));
    EXPECT_FLOAT_EQ(t[i], std::tanh(xv[i]));
    EXPECT_FLOAT_EQ(r[i], xv[i] < 0 ? 0.f : xv[i]);
  }
}

TEST(Unary, NanPropagates) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(relu(vec({nan})).item()));
  EXPECT_TRUE(std::isnan(clamp(vec({nan}), -1, 1).item()));
  EXPECT_TRUE(std::isnan(abs(vec({nan})).item()));
  EXPECT_TRUE(std::isnan(log(vec({-1})).item()));
  EXPECT_EQ(log(vec({0})).item(), -std::numeric_limits<double>::infinity());
}

TEST(Unary, IntegerDtypes) {
  Tensor i = from_vector<int64_t>({-3, 0, 5});
  Tensor n = neg(i);
  EXPECT_EQ(n.dtype(), DType::i64);
  EXPECT_EQ(n.to_vector<int64_t>(), (std::vector<int64_t>{3, 0, -5}));
  EXPECT_EQ(abs(i).to_vector<int64_t>(), (std::vector<int64_t>{3, 0, 5}));
  EXPECT_EQ(relu(i).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 5}));
  EXPECT_EQ(clamp(i, -1, 2).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2}));
  // Fractional bounds round inwards for integers.
  EXPECT_EQ(clamp(i, -1.5, 2.5).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2}));
  Tensor i32 = from_vector<int32_t>({-7, 7});
  EXPECT_EQ(abs(i32).dtype(), DType::i32);
  EXPECT_EQ(abs(i32).to_vector<int32_t>(), (std::vector<int32_t>{7, 7}));
  EXPECT_EQ(clamp(i32, 0).to_vector<int32_t>(), (std::vector<int32_t>{0, 7}));
  Tensor u = from_vector<uint8_t>({0, 200});
  EXPECT_EQ(abs(u).to_vector<int>(), (std::vector<int>{0, 200}));
  EXPECT_EQ(relu(u).to_vector<int>(), (std::vector<int>{0, 200}));
  EXPECT_EQ(clamp(u, 10, 100).to_vector<int>(), (std::vector<int>{10, 100}));
  EXPECT_EQ((-i).to_vector<int64_t>(), (std::vector<int64_t>{3, 0, -5}));
}

TEST(Unary, HalfPrecisionMatchesF32) {
  const std::vector<std::pair<const char*, UnaryFn>> fns = {
      {"neg", neg},   {"exp", exp},         {"tanh", tanh},   {"sigmoid", sigmoid},   {"abs", abs},
      {"relu", relu}, {"gelu", gelu_erf},   {"gelu_tanh", gelu_tanh}, {"pow3", pow3}, {"clamp", clamp_mid}};
  Tensor x = uniform({3, 37}, -2, 2, {.dtype = DType::f32});
  Tensor pos = uniform({3, 37}, 0.1, 4, {.dtype = DType::f32});
  auto check = [](const char* name, const Tensor& ref, const Tensor& low) {
    std::vector<double> r = ref.to_vector<double>(), l = low.to_vector<double>();
    for (size_t i = 0; i < r.size(); ++i)
      EXPECT_NEAR(l[i], r[i], 1e-2 * std::abs(r[i]) + 1e-3) << name << " " << dtype_name(low.dtype()) << " element " << i;
  };
  for (DType dt : {DType::bf16, DType::f16}) {
    for (auto& [name, f] : fns) {
      Tensor low = f(x.to(dt));
      EXPECT_EQ(low.dtype(), dt);
      // The reference sees the same rounded inputs, so only the kernel's own error is compared.
      check(name, f(x.to(dt).to(DType::f32)), low);
    }
    Tensor p = pos.to(dt), p32 = p.to(DType::f32);
    check("log", log(p32), log(p));
    check("sqrt", sqrt(p32), sqrt(p));
    check("rsqrt", rsqrt(p32), rsqrt(p));
    check("pow", pow(p32, -1.5), pow(p, -1.5));
  }
}

TEST(Unary, HalfPrecisionBackward) {
  Tensor x = from_vector<float>({-1, 0.5, 2}).to(DType::bf16).requires_grad_();
  sum(tanh(x)).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  std::vector<double> g = x.grad().to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    double xv = std::vector<double>{-1, 0.5, 2}[i];
    double t = std::tanh(xv);
    EXPECT_NEAR(g[i], 1 - t * t, 1e-2);
  }
}

TEST(UnaryGrad, SmoothOps) {
  const std::vector<std::pair<const char*, UnaryFn>> fns = {
      {"neg", neg}, {"exp", exp}, {"tanh", tanh}, {"sigmoid", sigmoid}, {"gelu", gelu_erf},
      {"gelu_tanh", gelu_tanh}, {"pow3", pow3}};
  for (auto& [name, f] : fns) {
    SCOPED_TRACE(name);
    auto fn = f;
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0]); }, {rand_input({3, 4}, 1, -3, 3)});
    // Non-contiguous input: a transpose and a stepped slice.
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0].transpose(0, 1).slice(0, 0, 5, 2)); },
                     {rand_input({3, 5}, 2, -2, 2)});
  }
}

TEST(UnaryGrad, PositiveDomainOps) {
  const std::vector<std::pair<const char*, UnaryFn>> fns = {
      {"log", log}, {"sqrt", sqrt}, {"rsqrt", rsqrt}, {"pow_frac", pow_frac}};
  for (auto& [name, f] : fns) {
    SCOPED_TRACE(name);
    auto fn = f;
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0]); }, {rand_input({2, 3, 2}, 3, 0.2, 3)});
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0].transpose(0, 2)); }, {rand_input({2, 3, 2}, 4, 0.2, 3)});
  }
  for (double p : {0.0, 1.0, 2.0, 0.5, 2.7}) {
    SCOPED_TRACE(p);
    EXPECT_GRADCHECK([p](const std::vector<Tensor>& in) { return pow(in[0], p); }, {rand_input({5}, 5, 0.2, 3)});
  }
}

TEST(UnaryGrad, PiecewiseOps) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return abs(in[0]); }, {away_from(0, {3, 4}, 10)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return relu(in[0].t()); }, {away_from(0, {3, 4}, 11)});
  // Values within 0.1 of a clamp boundary are avoided: boundaries at -0.5 and 0.5 with shifted inputs.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return clamp(in[0], -0.5 + 0.05, 0.5 + 0.05); },
                   {away_from(0, {4, 3}, 12)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return clamp(in[0].slice(1, 0, 3, 2), 0.0); }, {away_from(0, {4, 3}, 13)});
}

TEST(UnaryGrad, KnownDerivatives) {
  Tensor x = vec({-1, 0.5, 2}).requires_grad_();
  sum(relu(x)).backward();
  expect_values(x.grad(), {0, 1, 1});
  Tensor y = vec({-2, -1, 0.5, 3}).requires_grad_();
  sum(clamp(y, -1, 1)).backward();
  expect_values(y.grad(), {0, 1, 1, 0});  // boundary inclusive, as PyTorch
  Tensor z = vec({4}).requires_grad_();
  sqrt(z).backward();
  expect_values(z.grad(), {0.25});
  Tensor w = vec({1}).requires_grad_();
  gelu(w).backward();
  // Phi(1) + phi(1) = 0.8413447460685429 + 0.24197072451914337
  expect_values(w.grad(), {1.0833154705876864});
}

TEST(UnaryGrad, IntegerResultsHaveNoGraph) {
  Tensor i = from_vector<int64_t>({1, -2});
  EXPECT_FALSE(relu(i).requires_grad());
  EXPECT_FALSE(neg(i).requires_grad());
}

TEST(UnaryErrors, FloatingOnlyOpsRejectIntegers) {
  Tensor i = from_vector<int64_t>({1, 2});
  EXPECT_KIRZL_ERROR(exp(i), ErrorCode::InvalidArgument, "exp", "floating", "i64[2]");
  EXPECT_KIRZL_ERROR(log(i), ErrorCode::InvalidArgument, "log", "floating");
  EXPECT_KIRZL_ERROR(sqrt(from_vector<uint8_t>({1})), ErrorCode::InvalidArgument, "sqrt", "u8");
  EXPECT_KIRZL_ERROR(tanh(i), ErrorCode::InvalidArgument, "tanh", "floating");
  EXPECT_KIRZL_ERROR(sigmoid(i), ErrorCode::InvalidArgument, "sigmoid", "floating");
  EXPECT_KIRZL_ERROR(gelu(i), ErrorCode::InvalidArgument, "gelu", "floating");
  EXPECT_KIRZL_ERROR(pow(i, 2.0), ErrorCode::InvalidArgument, "pow", "floating");
  EXPECT_KIRZL_ERROR(rsqrt(i), ErrorCode::InvalidArgument, "rsqrt", "floating");
}

TEST(UnaryErrors, BadArguments) {
  Tensor x = zeros({2});
  EXPECT_KIRZL_ERROR(clamp(x, 1, -1), ErrorCode::InvalidArgument, "clamp", "min <= max");
  EXPECT_KIRZL_ERROR(clamp(x, std::nan("")), ErrorCode::InvalidArgument, "clamp", "NaN");
  EXPECT_KIRZL_ERROR(pow(x, std::nan("")), ErrorCode::InvalidArgument, "pow", "NaN");
  EXPECT_KIRZL_ERROR(exp(Tensor()), ErrorCode::InvalidArgument, "exp", "undefined");
  EXPECT_KIRZL_ERROR(neg(Tensor()), ErrorCode::InvalidArgument, "neg", "undefined");
}
