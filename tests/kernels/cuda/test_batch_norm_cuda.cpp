// CUDA batch norm: errors for operands on other devices and statistics of the wrong dtype. The
// numeric checks (statistics, forward, backward in training and eval mode, subsets of the
// gradients, a million values per channel, bit-for-bit determinism, running statistics with f32
// parameters) are rows of the op table (tests/ops/harness/rows_nn.cpp).
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "kernels/batch_norm.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;

namespace {

// The device under test (the CPU in a dry run, see tests/support/cuda_compare.hpp).
const Device kCuda = kirzl::testing::test_gpu();

TEST(BatchNormCuda, ErrorsOnDeviceMismatch) {
  KIRZL_REQUIRE_GPU();
  if (kirzl::testing::kGpuDryRun) GTEST_SKIP() << "a device mismatch needs a second device (dry run: the GPU is the CPU)";
  Tensor x = kirzl::testing::uniform_cpu({4, 3, 2, 2}, DType::f32).to(kCuda);
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
