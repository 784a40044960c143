// where() and masked_fill(): selection, broadcasting, promotion, gradients, bad input.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using kirzl::testing::rand_input;

TEST(Where, SelectsElementwise) {
  Tensor cond = from_vector<uint8_t>({1, 0, 0, 1});
  Tensor a = from_vector<double>({1, 2, 3, 4});
  Tensor b = from_vector<double>({-1, -2, -3, -4});
  EXPECT_EQ(where(cond, a, b).to_vector<double>(), (std::vector<double>{1, -2, -3, 4}));
  // Any nonzero value of a non-u8 condition counts as true (0.5 must not truncate to false).
  Tensor fcond = from_vector<float>({0.5f, 0.f, -2.f, 0.f});
  EXPECT_EQ(where(fcond, a, b).to_vector<double>(), (std::vector<double>{1, -2, 3, -4}));
  Tensor icond = from_vector<int64_t>({0, 7, 0, 0});
  EXPECT_EQ(where(icond, a, b).to_vector<double>(), (std::vector<double>{-1, 2, -3, -4}));
}

TEST(Where, BroadcastsAllThree) {
  // cond [3,1,1] picks rows, a is [2,1], b is a scalar: result [3,2,1].
  Tensor cond = from_vector<uint8_t>({1, 0, 1}, {3, 1, 1});
  Tensor a = from_vector<double>({10, 20}, {2, 1});
  Tensor b = scalar_tensor(-1.0, {.dtype = DType::f64});
  Tensor out = where(cond, a, b);
  EXPECT_EQ(out.shape(), (Shape{3, 2, 1}));
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{10, 20, -1, -1, 10, 20}));
}

TEST(Where, PromotesDtypes) {
  Tensor cond = from_vector<uint8_t>({1, 0});
  Tensor out = where(cond, from_vector<int64_t>({3, 4}), from_vector<float>({0.5f, 1.5f}));
  EXPECT_EQ(out.dtype(), DType::f32);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{3.f, 1.5f}));
  Tensor ints = where(cond, from_vector<int32_t>({3, 4}), from_vector<int64_t>({5, 6}));
  EXPECT_EQ(ints.dtype(), DType::i64);
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{3, 6}));
  Tensor h = where(cond, from_vector<float>({1, 2}).to(DType::bf16), from_vector<float>({3, 4}).to(DType::bf16));
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1, 4}));
}

TEST(Where, NonContiguousInputs) {
  Tensor a = arange(0, 6, 1, {.dtype = DType::f64}).reshape({2, 3});
  Tensor cond = from_vector<uint8_t>({1, 0, 1, 0, 1, 0}, {3, 2});
  EXPECT_EQ(where(cond, a.t(), zeros({3, 2}, {.dtype = DType::f64})).to_vector<double>(),
            (std::vector<double>{0, 0, 1, 0, 2, 0}));
}

TEST(Where, GradientGoesToTheSelectedSide) {
  Tensor cond = from_vector<uint8_t>({1, 0, 1});
  Tensor a = from_vector<double>({1, 2, 3}).requires_grad_();
  Tensor b = from_vector<double>({4, 5, 6}).requires_grad_();
  sum(where(cond, a, b)).backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{0, 1, 0}));
}

TEST(Where, Gradcheck) {
  Generator gen(7);
  Tensor cond = gt(rand({3, 1, 4}, {}, &gen), scalar_tensor(0.5));
  EXPECT_GRADCHECK([cond](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
                   {rand_input({2, 4}, 1), rand_input({3, 2, 1}, 2)});
  // Non-contiguous a (transpose), b broadcast along the last dim.
  EXPECT_GRADCHECK([cond](const std::vector<Tensor>& in) { return where(cond, in[0].transpose(0, 1), in[1]); },
                   {rand_input({4, 2}, 3), rand_input({3, 1, 1}, 4)});
  // Only one side requires grad; the other is an integer constant promoted to f64.
  Tensor ints = from_vector<int64_t>({1, 2, 3, 4});
  auto one_side = [cond, ints](const std::vector<Tensor>& in) { return where(cond, ints, in[0]); };
  EXPECT_GRADCHECK(one_side, {rand_input({4}, 5)});
}

TEST(MaskedFill, Values) {
  Tensor x = arange(0, 6, 1, {.dtype = DType::f32}).reshape({2, 3});
  Tensor mask = from_vector<uint8_t>({1, 0, 1}, {1, 3});
  Tensor out = masked_fill(x, mask, -100);
  EXPECT_EQ(out.shape(), (Shape{2, 3}));
  EXPECT_EQ(out.dtype(), DType::f32);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{-100, 1, -100, -100, 4, -100}));
  Tensor xi = from_vector<int64_t>({1, 2, 3});
  Tensor oi = masked_fill(xi, from_vector<uint8_t>({0, 1, 0}), 9);
  EXPECT_EQ(oi.dtype(), DType::i64);
  EXPECT_EQ(oi.to_vector<int64_t>(), (std::vector<int64_t>{1, 9, 3}));
  // -inf fill, as used for attention masks.
  Tensor inf = masked_fill(zeros({2}), from_vector<uint8_t>({1, 0}), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(inf.to_vector<float>()[0], -std::numeric_limits<float>::infinity());
}

TEST(MaskedFill, Gradient) {
  Tensor mask = from_vector<uint8_t>({1, 0, 0, 1}, {4, 1});
  EXPECT_GRADCHECK([mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, 3.0); }, {rand_input({4, 3}, 6)});
  EXPECT_GRADCHECK([mask](const std::vector<Tensor>& in) { return masked_fill(in[0].t(), mask, 0.0); }, {rand_input({3, 4}, 7)});
  Tensor x = from_vector<double>({1, 2}).requires_grad_();
  sum(masked_fill(x, from_vector<uint8_t>({1, 0}), 5)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1}));
}

TEST(WhereErrors, BroadcastMismatchNamesShapes) {
  Tensor cond = zeros({3, 2}, {.dtype = DType::u8});
  EXPECT_KIRZL_ERROR(where(cond, zeros({3, 4}), zeros({1})), ErrorCode::InvalidArgument, "where", "[3, 2]", "[3, 4]");
  EXPECT_KIRZL_ERROR(where(cond, zeros({2}), zeros({5, 1, 3})), ErrorCode::InvalidArgument, "where", "[5, 1, 3]");
}

TEST(WhereErrors, MaskedFillMaskMustBroadcastToX) {
  EXPECT_KIRZL_ERROR(masked_fill(zeros({2, 3}), zeros({2, 2}, {.dtype = DType::u8}), 0), ErrorCode::InvalidArgument,
                     "masked_fill", "[2, 2]", "[2, 3]");
  // The mask may not enlarge x either.
  EXPECT_KIRZL_ERROR(masked_fill(zeros({3}), zeros({2, 3}, {.dtype = DType::u8}), 0), ErrorCode::InvalidArgument,
                     "masked_fill", "[2, 3]");
}

TEST(WhereErrors, Undefined) {
  EXPECT_KIRZL_ERROR(where(Tensor(), zeros({1}), zeros({1})), ErrorCode::InvalidArgument, "where", "cond", "undefined");
  EXPECT_KIRZL_ERROR(masked_fill(zeros({1}), Tensor(), 0), ErrorCode::InvalidArgument, "masked_fill", "mask");
}
