#include "kirzl/data/dataset.hpp"

#include <gtest/gtest.h>

#include "kirzl/kirzl.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;

namespace {

TensorDataset numbered(int64_t n) {
  Tensor x = arange(n * 6).to(DType::f32).reshape({n, 2, 3});
  Tensor y = arange(n);
  return TensorDataset(x, y);
}

// A dataset that only implements get(), to exercise the default get_batch().
class SquaresDataset : public Dataset {
 public:
  int64_t size() const override { return 10; }
  Example get(int64_t i) const override {
    return {full({2}, static_cast<double>(i * i)), full({}, static_cast<double>(i), {.dtype = DType::i64})};
  }
};

}  // namespace

TEST(TensorDataset, GetReturnsTheRow) {
  auto ds = numbered(4);
  EXPECT_EQ(ds.size(), 4);
  Example e = ds.get(2);
  EXPECT_EQ(e.input.shape(), (Shape{2, 3}));
  EXPECT_EQ(e.input.to_vector<float>(), (std::vector<float>{12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(e.target.item(), 2);
}

TEST(TensorDataset, GetBatchGathersRowsInOrder) {
  auto ds = numbered(5);
  std::vector<int64_t> idx{4, 0, 4};
  auto [x, y] = ds.get_batch(idx);
  EXPECT_EQ(x.shape(), (Shape{3, 2, 3}));
  EXPECT_TRUE(x.is_contiguous());
  EXPECT_EQ(y.to_vector<int64_t>(), idx);
  EXPECT_EQ(x.select(0, 0).to_vector<float>(), ds.get(4).input.to_vector<float>());
  EXPECT_EQ(x.select(0, 1).to_vector<float>(), ds.get(0).input.to_vector<float>());
}

TEST(TensorDataset, AcceptsNonContiguousInputs) {
  Tensor x = arange(12).to(DType::f32).reshape({3, 4}).transpose(0, 1);  // [4, 3], strided
  TensorDataset ds(x, arange(4));
  std::vector<int64_t> idx{1};
  EXPECT_EQ(ds.get_batch(idx).input.to_vector<float>(), (std::vector<float>{1, 5, 9}));
}

TEST(TensorDataset, RejectsMismatchedAndOutOfRange) {
  EXPECT_KIRZL_ERROR(TensorDataset(zeros({3, 2}), zeros({4})), ErrorCode::InvalidArgument, "same first dimension", "[3, 2]",
                     "[4]");
  auto ds = numbered(3);
  EXPECT_KIRZL_ERROR(ds.get(3), ErrorCode::InvalidArgument, "index 3", "3 examples");
  std::vector<int64_t> bad{0, 7};
  EXPECT_KIRZL_ERROR(ds.get_batch(bad), ErrorCode::InvalidArgument, "index 7", "3 rows");
}

TEST(Dataset, DefaultGetBatchStacksExamples) {
  SquaresDataset ds;
  std::vector<int64_t> idx{3, 1};
  auto [x, y] = ds.get_batch(idx);
  EXPECT_EQ(x.shape(), (Shape{2, 2}));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{9, 9, 1, 1}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
}
