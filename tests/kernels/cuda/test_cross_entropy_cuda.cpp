// CUDA cross-entropy with out-of-range targets: rejected by the op (at the next synchronising
// point, Note [deferred index check], or at the call under KIRZL_SYNC_INDEX_CHECKS=1), and the
// kernel writes NaN for such a row without reading out of bounds. The numeric checks (every path,
// reduction, ignore_index, label smoothing, all targets ignored) are rows of the op table
// (tests/ops/harness/rows_loss.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cross_entropy.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

Device gpu() { return test_gpu(); }

}  // namespace

TEST(CrossEntropyCuda, OutOfRangeTargetIsRejected) {
  KIRZL_REQUIRE_GPU();
  Tensor x = uniform_cpu({4, 10}, DType::f32).to(gpu());
  Tensor t = from_vector<int64_t>({1, 2, 10, -1}).to(gpu());
  // At the call (dry run, KIRZL_SYNC_INDEX_CHECKS=1) or at item(), the next synchronising point.
  EXPECT_KIRZL_ERROR(cross_entropy(x, t).item(), ErrorCode::InvalidArgument,
                     "cross_entropy: target 10 at position [2] is out of range for 10 classes (expected 0 .. 9 or "
                     "ignore_index -100)");
  Tensor t32 = from_vector<int32_t>({1, -5, 3, 4}).to(gpu());
  EXPECT_KIRZL_ERROR(cross_entropy(x, t32).item(), ErrorCode::InvalidArgument, "target -5 at position [1]");
  if (kGpuDryRun || cuda::sync_index_checks()) {
    EXPECT_KIRZL_ERROR(cross_entropy(x, t), ErrorCode::InvalidArgument, "target 10 at position [2]");
    return;
  }
  // Deferred (Note [deferred index check]): the call and backward return without waiting; the
  // loss is NaN, and the error comes at the next synchronising point, once.
  Tensor xg = x.detach().requires_grad_();
  Tensor loss;
  ASSERT_NO_THROW(loss = cross_entropy(xg, from_vector<int64_t>({1, 2, 3, 20}).to(gpu())));
  ASSERT_NO_THROW(loss.backward());
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "target 20 at position [3]");
  EXPECT_TRUE(std::isnan(loss.item()));
  EXPECT_NO_THROW(cuda::synchronize(0));
}

TEST(CrossEntropyCuda, KernelCalledWithABadTargetWritesNaNAndStaysInBounds) {
  KIRZL_REQUIRE_GPU();
  if (kGpuDryRun) GTEST_SKIP() << "a property of the CUDA kernels that the CPU kernels do not share";
  Tensor x = uniform_cpu({3, 10}, DType::f32).to(gpu());
  Tensor t = from_vector<int64_t>({1, 1000000, 2}).to(gpu());
  Tensor loss = empty({3}, {.dtype = DType::f32, .device = gpu()}), lse = empty({3}, {.dtype = DType::f32, .device = gpu()});
  kernels::cross_entropy_forward(loss, lse, x, t, -100, 0.0);
  auto l = loss.to_vector<float>();
  EXPECT_FALSE(std::isnan(l[0]));
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_FALSE(std::isnan(l[2]));
}
