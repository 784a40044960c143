#include <gtest/gtest.h>

#include <sstream>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;

TEST(Tensor, FactoriesAndMetadata) {
  auto z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.dtype(), DType::f32);
  EXPECT_EQ(z.device(), Device::cpu());
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.size(-1), 3);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.data_ptr()) % 64, 0u);  // Note [cpu alignment]
  EXPECT_EQ(ones({3}, {.dtype = DType::i32}).to_vector<int32_t>(), (std::vector<int32_t>{1, 1, 1}));
  EXPECT_EQ(full({2}, 2.5, {.dtype = DType::f64}).to_vector<double>(), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1.0, 2.0, 0.25, {.dtype = DType::f32}).to_vector<float>(), (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(scalar_tensor(3.0).dim(), 0);
  EXPECT_EQ(scalar_tensor(3.0).item(), 3.0);
  EXPECT_EQ(zeros({0, 4}).numel(), 0);
}

TEST(Tensor, FromVectorConvertsAndChecksSize) {
  auto t = from_vector<int32_t>({1, 2, 3, 4}, {2, 2}, {.dtype = DType::f64});
  EXPECT_EQ(t.dtype(), DType::f64);
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_KIRZL_ERROR(from_vector<float>({1, 2, 3}, {2, 2}), ErrorCode::InvalidArgument, "3 values", "[2, 2]");
}

TEST(Tensor, FromBlobSharesMemory) {
  std::vector<float> buf{1, 2, 3, 4, 5, 6};
  auto t = from_blob(buf.data(), {2, 3}, DType::f32);
  buf[4] = 50;
  EXPECT_EQ(t.to_vector<float>()[4], 50);
  auto col = from_blob(buf.data(), {3}, {2}, DType::f32);  // every other element
  EXPECT_EQ(col.to_vector<float>(), (std::vector<float>{1, 3, 50}));
  bool freed = false;
  {
    auto owned = from_blob(buf.data(), {6}, DType::f32, Device::cpu(), [&](void*) { freed = true; });
    auto view = owned.slice(0, 1, 3);
    owned = Tensor();
    EXPECT_FALSE(freed);  // the view keeps the storage alive
  }
  EXPECT_TRUE(freed);
}

TEST(Tensor, ViewsShareStorage) {
  auto t = arange(0.0, 24.0, 1.0, {.dtype = DType::f32}).reshape({2, 3, 4});
  auto tr = t.transpose(0, 2);
  EXPECT_EQ(tr.shape(), (Shape{4, 3, 2}));
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.storage().id(), t.storage().id());
  // Element [i][j][k] of the transpose is t[k][j][i] = 12k + 4j + i.
  auto c = tr.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  auto v = c.to_vector<float>();
  EXPECT_EQ(v[(3 * 3 + 2) * 2 + 1], 12 * 1 + 4 * 2 + 3);

  auto s = t.slice(2, 1, 4, 2);  // k = 1, 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.contiguous().to_vector<float>()[0], 1);
  EXPECT_EQ(s.contiguous().to_vector<float>()[1], 3);
  EXPECT_EQ(t.slice(1, -2, 100).shape(), (Shape{2, 2, 4}));  // clamped like Python slicing
  EXPECT_EQ(t.select(1, -1).shape(), (Shape{2, 4}));
  EXPECT_EQ(t.select(1, -1).contiguous().to_vector<float>()[0], 8);
  EXPECT_EQ(t.narrow(0, 1, 1).contiguous().to_vector<float>()[0], 12);
  EXPECT_EQ(t.permute({2, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(t.permute({2, 0, 1}).contiguous().to_vector<float>()[1], 4);   // [0,0,1] = t[0][1][0]
  EXPECT_EQ(t.permute({2, 0, 1}).contiguous().to_vector<float>()[3], 12);  // [0,1,0] = t[1][0][0]
  EXPECT_EQ(t.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(t.unsqueeze(1).squeeze(1).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(zeros({1, 3, 1}).squeeze().shape(), (Shape{3}));
  EXPECT_EQ(t.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.view({-1, 4}).shape(), (Shape{6, 4}));

  // Writing through a view is seen by the base.
  t.select(0, 1).select(0, 2).fill_(-1.0);
  EXPECT_EQ(t.to_vector<float>()[12 + 8], -1);
}

TEST(Tensor, ExpandBroadcastsWithZeroStride) {
  auto row = from_vector<float>({1, 2, 3}, {1, 3});
  auto e = row.expand({4, 3});
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(e.contiguous().to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(row.expand({2, -1, 3}).shape(), (Shape{2, 1, 3}));
  EXPECT_KIRZL_ERROR(row.expand({4, 2}), ErrorCode::InvalidArgument, "expand", "[4, 2]");
}

// Tensors without elements are contiguous, whatever shape holds the zero: contiguous() must not copy
// them and kernels that require contiguous inputs must accept them.
TEST(Tensor, EmptyTensorsAreContiguous) {
  for (const Shape& shape : {Shape{0}, Shape{2, 0, 3}, Shape{0, 4}, Shape{3, 0}, Shape{2, 3, 0, 1}}) {
    Tensor t = empty(shape);
    EXPECT_TRUE(t.is_contiguous()) << shape.str();
    EXPECT_EQ(t.contiguous().strides(), t.strides()) << shape.str();
    EXPECT_EQ(t.numel(), 0) << shape.str();
  }
}

TEST(Tensor, ReshapeOfNonContiguousCopies) {
  auto t = arange(0.0, 6.0, 1.0, {.dtype = DType::f32}).reshape({2, 3}).t();
  EXPECT_KIRZL_ERROR(t.view({6}), ErrorCode::InvalidArgument, "view", "reshape()");
  auto r = t.reshape({6});
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // A slice of a contiguous tensor along the outer dim can be viewed without a copy.
  auto base = arange(0.0, 24.0, 1.0, {.dtype = DType::f32}).reshape({4, 6});
  auto sl = base.slice(0, 1, 3);
  auto v = sl.view({2, 2, 3});
  EXPECT_EQ(v.storage().id(), base.storage().id());
  EXPECT_EQ(v.contiguous().to_vector<float>()[0], 6);
}

TEST(Tensor, DtypeConversionRoundsAndTruncates) {
  auto f = from_vector<float>({1.5f, -2.7f, 3.0f});
  EXPECT_EQ(f.to(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 3}));
  auto b = f.to(DType::bf16);
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_NEAR(b.to(DType::f32).to_vector<float>()[1], -2.7f, 0.01f);
  EXPECT_EQ(f.to(DType::f32).impl(), f.impl());  // same dtype: no copy
  auto c = f.clone();
  EXPECT_NE(c.storage().id(), f.storage().id());
}

TEST(Tensor, CopyAndInPlace) {
  auto dst = zeros({2, 3});
  dst.copy_(from_vector<double>({1, 2, 3}, {3}));  // broadcast + convert
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  dst.add_(ones({3}), 2.0);
  EXPECT_EQ(dst.to_vector<float>()[0], 3);
  dst.mul_(0.5);
  EXPECT_EQ(dst.to_vector<float>()[2], 2.5);
  dst.zero_();
  EXPECT_EQ(sum(dst).item(), 0);
  EXPECT_KIRZL_ERROR(dst.copy_(zeros({4})), ErrorCode::InvalidArgument, "[4]", "[2, 3]");
  auto leaf = zeros({2}, {.requires_grad = true});
  EXPECT_KIRZL_ERROR(leaf.fill_(1.0), ErrorCode::InvalidArgument, "leaf", "NoGradGuard");
  {
    NoGradGuard g;
    leaf.fill_(1.0);
  }
  EXPECT_EQ(leaf.to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Tensor, ItemAndErrors) {
  EXPECT_EQ(from_vector<int64_t>({7}).item<int64_t>(), 7);
  EXPECT_KIRZL_ERROR(zeros({2}).item(), ErrorCode::InvalidArgument, "item", "one element", "f32[2]");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).size(2), ErrorCode::InvalidArgument, "dimension 2", "out of range");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).transpose(0, 5), ErrorCode::InvalidArgument, "transpose", "5");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).select(1, 3), ErrorCode::InvalidArgument, "index 3", "out of range");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).narrow(1, 2, 2), ErrorCode::InvalidArgument, "narrow", "out of bounds");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).permute({0, 0}), ErrorCode::InvalidArgument, "twice");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).view({4, -1}), ErrorCode::InvalidArgument, "6 elements");
  EXPECT_KIRZL_ERROR(zeros({2, 3}).data<double>(), ErrorCode::InvalidArgument, "f64");
  EXPECT_KIRZL_ERROR(zeros({1, 2, 3, 4, 5, 6, 7, 8, 9}), ErrorCode::InvalidArgument, "at most 8");
  EXPECT_KIRZL_ERROR(zeros({-1}), ErrorCode::InvalidArgument, "negative");
  EXPECT_KIRZL_ERROR(Tensor().shape(), ErrorCode::InvalidArgument, "undefined");
  EXPECT_KIRZL_ERROR(zeros({2}, {.dtype = DType::i32, .requires_grad = true}), ErrorCode::InvalidArgument, "floating");
}

TEST(Tensor, CudaWithoutGpuIsAClearError) {
  if (cuda::is_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU error";
  EXPECT_KIRZL_ERROR(zeros({2}, {.device = Device::cuda(0)}), ErrorCode::Unsupported, "cuda");
  EXPECT_KIRZL_ERROR(zeros({2}).to(Device::cuda(0)), ErrorCode::Unsupported, "cuda");
}

TEST(Tensor, PrintsLikeNumpy) {
  auto t = from_vector<float>({1, -2.5f, 3, 4}, {2, 2});
  EXPECT_EQ(t.str(), "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]], f32, cpu)");
  EXPECT_EQ(from_vector<int64_t>({1, 20, 3}).str(), "tensor([ 1, 20,  3], i64, cpu)");
  EXPECT_EQ(scalar_tensor(2.0).str(), "tensor(2.0000, f32, cpu)");
  auto big = zeros({2000});
  EXPECT_NE(big.str().find("..."), std::string::npos);
  auto g = zeros({2}, {.requires_grad = true});
  EXPECT_NE(g.str().find("requires_grad"), std::string::npos);
  EXPECT_NE((g * 2.0).str().find("grad_fn=mul"), std::string::npos);
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), t.str());
}
