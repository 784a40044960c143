// Binary elementwise ops: arithmetic, maximum/minimum, comparisons, broadcasting, promotion.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
Tensor vec(const std::vector<double>& v) { return from_vector<double>(v); }
std::vector<int> u8(const Tensor& t) {
  EXPECT_EQ(t.dtype(), DType::u8);
  return t.to_vector<int>();
}

}  // namespace

TEST(Binary, ArithmeticValues) {
  Tensor a = vec({1, -2, 3.5}), b = vec({4, 0.5, -2});
  EXPECT_EQ(values(add(a, b)), (std::vector<double>{5, -1.5, 1.5}));
  EXPECT_EQ(values(sub(a, b)), (std::vector<double>{-3, -2.5, 5.5}));
  EXPECT_EQ(values(mul(a, b)), (std::vector<double>{4, -1, -7}));
  EXPECT_EQ(values(div(a, b)), (std::vector<double>{0.25, -4, -1.75}));
  EXPECT_EQ(values(maximum(a, b)), (std::vector<double>{4, 0.5, 3.5}));
  EXPECT_EQ(values(minimum(a, b)), (std::vector<double>{1, -2, -2}));
  EXPECT_EQ(values(a + b), values(add(a, b)));
  EXPECT_EQ(values(a - b), values(sub(a, b)));
  EXPECT_EQ(values(a * b), values(mul(a, b)));
  EXPECT_EQ(values(a / b), values(div(a, b)));
  EXPECT_EQ(values(-a), (std::vector<double>{-1, 2, -3.5}));
  EXPECT_EQ(values(div(vec({1, -1, 0}), vec({0, 0, 0})))[0], std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(values(div(vec({0}), vec({0})))[0]));
}

TEST(Binary, ScalarVariants) {
  Tensor a = vec({2, -4});
  EXPECT_EQ(values(add(a, 1.5)), (std::vector<double>{3.5, -2.5}));
  EXPECT_EQ(values(sub(a, 1)), (std::vector<double>{1, -5}));
  EXPECT_EQ(values(mul(a, -0.5)), (std::vector<double>{-1, 2}));
  EXPECT_EQ(values(div(a, 4)), (std::vector<double>{0.5, -1}));
  EXPECT_EQ(values(rsub(a, 10)), (std::vector<double>{8, 14}));
  EXPECT_EQ(values(rdiv(a, 8)), (std::vector<double>{4, -2}));
  EXPECT_EQ(values(a + 1.0), (std::vector<double>{3, -3}));
  EXPECT_EQ(values(1.0 + a), (std::vector<double>{3, -3}));
  EXPECT_EQ(values(a - 1.0), (std::vector<double>{1, -5}));
  EXPECT_EQ(values(1.0 - a), (std::vector<double>{-1, 5}));
  EXPECT_EQ(values(a * 3.0), (std::vector<double>{6, -12}));
  EXPECT_EQ(values(3.0 * a), (std::vector<double>{6, -12}));
  EXPECT_EQ(values(a / 2.0), (std::vector<double>{1, -2}));
  EXPECT_EQ(values(2.0 / a), (std::vector<double>{1, -0.5}));
  // The scalar keeps the tensor's dtype.
  EXPECT_EQ(add(zeros({2}, {.dtype = DType::f16}), 1.0).dtype(), DType::f16);
}

TEST(Binary, Broadcasting) {
  // [2,1] with [3] -> [2,3]: out[i][j] = a[i] + b[j].
  Tensor a = vec({10, 20}).reshape({2, 1}), b = vec({1, 2, 3});
  Tensor s = add(a, b);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(s), (std::vector<double>{11, 12, 13, 21, 22, 23}));
  EXPECT_EQ(values(sub(b, a)), (std::vector<double>{-9, -8, -7, -19, -18, -17}));
  // [3,1,4] with [2,4] -> [3,2,4].
  Tensor x = arange(0, 12, 1, {.dtype = DType::f64}).reshape({3, 1, 4});
  Tensor y = arange(0, 8, 1, {.dtype = DType::f64}).reshape({2, 4});
  Tensor m = mul(x, y);
  EXPECT_EQ(m.shape(), (Shape{3, 2, 4}));
  std::vector<double> mv = values(m);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k) ASSERT_EQ(mv[(i * 2 + j) * 4 + k], double(i * 4 + k) * double(j * 4 + k));
  // 0-d with anything, and size-0 dims.
  EXPECT_EQ(values(add(scalar_tensor(1.0, {.dtype = DType::f64}), vec({1, 2}))), (std::vector<double>{2, 3}));
  EXPECT_EQ(add(zeros({0, 3}), zeros({3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(add(zeros({1, 3}), zeros({0, 1})).shape(), (Shape{0, 3}));
  EXPECT_EQ(broadcast_shapes({5, 1, 3}, {4, 1}), (Shape{5, 4, 3}));
}

TEST(Binary, NonContiguousAndLarge) {
  Tensor a = arange(0, 6, 1, {.dtype = DType::f64}).reshape({2, 3});
  EXPECT_EQ(values(add(a.t(), a.t())), (std::vector<double>{0, 6, 2, 8, 4, 10}));
  EXPECT_EQ(values(mul(a.slice(1, 0, 3, 2), 2.0)), (std::vector<double>{0, 4, 6, 10}));
  // Big enough for the threaded path; row broadcast of b.
  Generator gen(1);
  Tensor x = uniform({300, 257}, -1, 1, {.dtype = DType::f32}, &gen);
  Tensor r = uniform({257}, -1, 1, {.dtype = DType::f32}, &gen);
  std::vector<float> xv = x.to_vector<float>(), rv = r.to_vector<float>(), ov = add(x, r).to_vector<float>();
  for (int64_t i = 0; i < 300 * 257; i += 131) ASSERT_EQ(ov[i], xv[i] + rv[i % 257]);
}

TEST(Binary, TypePromotion) {
  Tensor i32 = from_vector<int32_t>({3, -4});
  Tensor i64 = from_vector<int64_t>({2, 5});
  Tensor f32 = from_vector<float>({0.5f, 1.5f});
  Tensor f64 = from_vector<double>({0.25, 1});
  EXPECT_EQ(add(i32, f32).dtype(), DType::f32);
  EXPECT_EQ(add(i32, f32).to_vector<float>(), (std::vector<float>{3.5f, -2.5f}));
  EXPECT_EQ(add(i32, i64).dtype(), DType::i64);
  EXPECT_EQ(add(i32, i64).to_vector<int64_t>(), (std::vector<int64_t>{5, 1}));
  EXPECT_EQ(mul(f32, f64).dtype(), DType::f64);
  EXPECT_EQ(add(f32.to(DType::bf16), f32).dtype(), DType::f32);
  EXPECT_EQ(add(f32.to(DType::bf16), f32.to(DType::bf16)).dtype(), DType::bf16);
  EXPECT_EQ(add(from_vector<uint8_t>({250}), i32).dtype(), DType::i32);
  // Integer tensor with a scalar: whole scalars keep the integer dtype, fractional ones go to f32.
  EXPECT_EQ(add(i64, 2.0).dtype(), DType::i64);
  EXPECT_EQ(add(i64, 2.0).to_vector<int64_t>(), (std::vector<int64_t>{4, 7}));
  EXPECT_EQ(add(i64, 0.5).dtype(), DType::f32);
  EXPECT_EQ(add(i64, 0.5).to_vector<float>(), (std::vector<float>{2.5f, 5.5f}));
}

TEST(Binary, IntegerArithmetic) {
  Tensor a = from_vector<int64_t>({7, -7, 6});
  EXPECT_EQ(div(a, from_vector<int64_t>({2, 2, 3})).to_vector<int64_t>(), (std::vector<int64_t>{3, -3, 2}));
  EXPECT_EQ(mul(a, 3.0).to_vector<int64_t>(), (std::vector<int64_t>{21, -21, 18}));
  EXPECT_EQ(maximum(a, from_vector<int64_t>({0})).to_vector<int64_t>(), (std::vector<int64_t>{7, 0, 6}));
}

TEST(Binary, HalfPrecisionMatchesF32) {
  Generator gen(2);
  Tensor a = uniform({4, 33}, -3, 3, {.dtype = DType::f32}, &gen);
  Tensor b = uniform({33}, 0.5, 3, {.dtype = DType::f32}, &gen);
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor al = a.to(dt), bl = b.to(dt);
    Tensor a32 = al.to(DType::f32), b32 = bl.to(DType::f32);  // same rounded inputs
    std::vector<std::pair<Tensor, Tensor>> pairs = {{add(al, bl), add(a32, b32)}, {sub(al, bl), sub(a32, b32)},
                                                    {mul(al, bl), mul(a32, b32)}, {div(al, bl), div(a32, b32)},
                                                    {maximum(al, bl), maximum(a32, b32)}};
    for (auto& [low, ref] : pairs) {
      EXPECT_EQ(low.dtype(), dt);
      std::vector<double> l = values(low), r = values(ref);
      for (size_t i = 0; i < l.size(); ++i) ASSERT_NEAR(l[i], r[i], 1e-2 * std::abs(r[i]) + 1e-3) << dtype_name(dt);
    }
  }
}

TEST(Binary, MaximumMinimumPropagateNan) {
  Tensor a = vec({kNaN, 1, 2}), b = vec({1, kNaN, 3});
  std::vector<double> mx = values(maximum(a, b)), mn = values(minimum(a, b));
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[1]));
  EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]));
  EXPECT_EQ(mx[2], 3);
  EXPECT_EQ(mn[2], 2);
}

TEST(Binary, Comparisons) {
  Tensor a = vec({1, 2, 3}), b = vec({2, 2, 2});
  EXPECT_EQ(u8(eq(a, b)), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(u8(ne(a, b)), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(u8(lt(a, b)), (std::vector<int>{1, 0, 0}));
  EXPECT_EQ(u8(le(a, b)), (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(u8(gt(a, b)), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(u8(ge(a, b)), (std::vector<int>{0, 1, 1}));
  // Broadcast and promote: i64 [2,1] against f32 [3].
  Tensor c = lt(from_vector<int64_t>({0, 1}, {2, 1}), from_vector<float>({-0.5f, 0.5f, 1.5f}));
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(u8(c), (std::vector<int>{0, 1, 1, 0, 0, 1}));
  // NaN compares unequal to everything.
  EXPECT_EQ(u8(eq(vec({kNaN}), vec({kNaN}))), (std::vector<int>{0}));
  EXPECT_EQ(u8(ne(vec({kNaN}), vec({kNaN}))), (std::vector<int>{1}));
  // Not differentiable: no graph even for inputs that require grad.
  EXPECT_FALSE(gt(rand_input({2}, 1), rand_input({2}, 2)).requires_grad());
}

TEST(BinaryGrad, KnownValues) {
  Tensor a = vec({1, 2}).requires_grad_();
  Tensor b = vec({3, 4}).requires_grad_();
  sum(div(a, b)).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1.0 / 3, 0.25}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{-1.0 / 9, -2.0 / 16}));
  // Ties in maximum split the gradient evenly.
  Tensor x = vec({1, 5}).requires_grad_();
  Tensor y = vec({1, 2}).requires_grad_();
  sum(maximum(x, y)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0.5, 1}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0.5, 0}));
  // Broadcast gradients sum over the broadcast dims.
  Tensor r = vec({1, 2, 3}).requires_grad_();
  sum(add(zeros({4, 3}, {.dtype = DType::f64}), r)).backward();
  EXPECT_EQ(values(r.grad()), (std::vector<double>{4, 4, 4}));
}

TEST(BinaryGrad, Broadcasting) {
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Fn>> fns = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"maximum", maximum}, {"minimum", minimum}};
  for (auto& [name, f] : fns) {
    SCOPED_TRACE(name);
    auto fn = f;
    // b in [0.5, 2] keeps div away from 0; random values make maximum/minimum ties improbable.
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); },
                     {rand_input({3, 1, 4}, 1), rand_input({2, 4}, 2, 0.5, 2)});
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0].transpose(0, 1), in[1].slice(0, 0, 8, 2)); },
                     {rand_input({4, 2}, 3), rand_input({8}, 4, 0.5, 2)});
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); },
                     {rand_input({}, 5, 0.5, 2), rand_input({2, 3}, 6, 0.5, 2)});
  }
}

TEST(BinaryGrad, ScalarVariants) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return add(in[0], 2.5); }, {rand_input({3}, 7)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return sub(in[0], 2.5); }, {rand_input({3}, 8)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return mul(in[0].t(), -3.0); }, {rand_input({2, 3}, 9)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return div(in[0], 4.0); }, {rand_input({3}, 10)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return rsub(in[0], 1.0); }, {rand_input({3}, 11)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return rdiv(in[0], 2.0); }, {rand_input({3}, 12, 0.5, 2)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return -in[0]; }, {rand_input({3}, 13)});
}

TEST(BinaryGrad, PromotedInputGetsItsOwnDtype) {
  Tensor a = from_vector<float>({1, 2}).requires_grad_();
  Tensor b = from_vector<double>({3, 4}).requires_grad_();
  sum(mul(a, b)).backward();
  EXPECT_EQ(a.grad().dtype(), DType::f32);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{1, 2}));
}

TEST(BinaryErrors, BroadcastMismatchNamesBothShapes) {
  EXPECT_KIRZL_ERROR(add(zeros({3, 2}), zeros({4})), ErrorCode::InvalidArgument, "add", "[3, 2]", "[4]");
  EXPECT_KIRZL_ERROR(mul(zeros({2, 3, 4}), zeros({5, 4})), ErrorCode::InvalidArgument, "mul", "[2, 3, 4]", "[5, 4]");
  EXPECT_KIRZL_ERROR(lt(zeros({2}), zeros({3})), ErrorCode::InvalidArgument, "lt", "[2]", "[3]");
  EXPECT_KIRZL_ERROR(broadcast_shapes({2}, {3}), ErrorCode::InvalidArgument, "[2]", "[3]");
}

TEST(BinaryErrors, IntegerDivisionByZero) {
  EXPECT_KIRZL_ERROR(div(from_vector<int64_t>({1, 2}), from_vector<int64_t>({1, 0})), ErrorCode::InvalidArgument, "div",
                     "division by zero");
  EXPECT_KIRZL_ERROR(div(from_vector<int32_t>({4}), 0.0), ErrorCode::InvalidArgument, "division by zero");
  // Large enough for the threaded loop: the error still surfaces as a kirzl::Error.
  EXPECT_KIRZL_ERROR(div(ones({100000}, {.dtype = DType::i32}), zeros({1}, {.dtype = DType::i32})),
                     ErrorCode::InvalidArgument, "division by zero");
}

TEST(BinaryErrors, Undefined) {
  EXPECT_KIRZL_ERROR(add(Tensor(), zeros({1})), ErrorCode::InvalidArgument, "add", "undefined");
  EXPECT_KIRZL_ERROR(mul(zeros({1}), Tensor()), ErrorCode::InvalidArgument, "mul", "undefined");
  EXPECT_KIRZL_ERROR(add(Tensor(), 1.0), ErrorCode::InvalidArgument, "add", "undefined");
}
