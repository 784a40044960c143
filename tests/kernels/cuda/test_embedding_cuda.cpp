// CUDA embedding with out-of-range indices: rejected by the op (at the next synchronising point,
// Note [deferred index check], or at the call under KIRZL_SYNC_INDEX_CHECKS=1) and never read by
// the kernels. The numeric checks (gathers, the backward's order of additions, bf16 accumulation,
// reproducibility) are rows of the op table (tests/ops/harness/rows_nn.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "kernels/embedding.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

Device gpu() { return test_gpu(); }

}  // namespace

// Whether the op checks at the call: always in a dry run (the CPU), on CUDA only when asked.
bool eager_index_checks() { return kGpuDryRun || cuda::sync_index_checks(); }

// `sync` waits for the device the way a user would; the index error surfaces there.
void expect_reported_at(const std::function<void()>& sync, const char* what) {
  SCOPED_TRACE(what);
  Tensor w = uniform_cpu({10, 4}, DType::f32).to(gpu());
  Tensor idx = from_vector<int64_t>({1, 2, 10}).to(gpu());
  Tensor out;
  ASSERT_NO_THROW(out = embedding(w, idx)) << "the deferred check must not wait for the GPU";
  EXPECT_KIRZL_ERROR(sync(), ErrorCode::InvalidArgument, "embedding: index 10 at flat position 2 of indices i64[3] on cuda:0",
                     "weight with 10 rows (expected 0 .. 9)");
  EXPECT_NO_THROW(cuda::synchronize(0)) << "an error is reported once";
}

TEST(EmbeddingCuda, OutOfRangeIndexIsRejectedByTheOp) {
  KIRZL_REQUIRE_GPU();
  Tensor w = uniform_cpu({10, 4}, DType::f32).to(gpu());
  // The op and a copy of its result to the host: the error comes at the call or at the copy.
  EXPECT_KIRZL_ERROR(embedding(w, from_vector<int64_t>({1, 2, 10}).to(gpu())).to(Device::cpu()),
                     ErrorCode::InvalidArgument, "index 10 at flat position 2");
  EXPECT_KIRZL_ERROR(embedding(w, from_vector<int32_t>({-1, 2}).to(gpu())).to(Device::cpu()),
                     ErrorCode::InvalidArgument, "index -1 at flat position 0");
  if (!eager_index_checks()) return;
  // Eager: at the call itself.
  EXPECT_KIRZL_ERROR(embedding(w, from_vector<int64_t>({1, 2, 10}).to(gpu())), ErrorCode::InvalidArgument,
                     "index 10 at flat position 2");
}

TEST(EmbeddingCuda, DeferredIndexErrorIsThrownByEverySynchronisingPoint) {
  KIRZL_REQUIRE_GPU();
  if (eager_index_checks()) GTEST_SKIP() << "index checks are eager (dry run or KIRZL_SYNC_INDEX_CHECKS=1)";
  expect_reported_at([] { cuda::synchronize(0); }, "cuda::synchronize");
  expect_reported_at([] { cuda::Stream::current(0).synchronize(); }, "Stream::synchronize");
  expect_reported_at(
      [] {
        cuda::Event e;
        e.record(cuda::Stream::current(0));
        e.synchronize();
      },
      "Event::synchronize");
  expect_reported_at([] { (void)zeros({1}, {.device = gpu()}).to(Device::cpu()); }, "Tensor::to(cpu)");
  expect_reported_at([] { (void)zeros({}, {.device = gpu()}).item(); }, "item()");
}

TEST(EmbeddingCuda, DeferredIndexErrorReportsTheFirstBadCall) {
  KIRZL_REQUIRE_GPU();
  if (eager_index_checks()) GTEST_SKIP() << "index checks are eager (dry run or KIRZL_SYNC_INDEX_CHECKS=1)";
  Tensor w = uniform_cpu({10, 4}, DType::f32).to(gpu());
  Tensor a = embedding(w, from_vector<int64_t>({0, 11, 12}).to(gpu()));  // lowest bad position of the call: 1
  Tensor b = embedding(w, from_vector<int32_t>({-3}).to(gpu()));         // dropped: the first error wins
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "index 11 at flat position 1");
  EXPECT_NO_THROW(cuda::synchronize(0));
  // Cleared: the next bad call is reported again; good calls report nothing.
  Tensor good = embedding(w, from_vector<int64_t>({0, 9}).to(gpu()));
  EXPECT_NO_THROW(good.to(Device::cpu()));
  Tensor c = embedding(w, from_vector<int32_t>({-3}).to(gpu()));
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "index -3 at flat position 0");
}

TEST(EmbeddingCuda, DeferredBadIndexMeanwhileGivesNaNRowsAndNoGradient) {
  // Until the error is thrown the result exists: the bad row is NaN, and backward skips it.
  KIRZL_REQUIRE_GPU();
  if (eager_index_checks()) GTEST_SKIP() << "index checks are eager (dry run or KIRZL_SYNC_INDEX_CHECKS=1)";
  Tensor w = uniform_cpu({10, 4}, DType::f32).to(gpu()).requires_grad_();
  Tensor out = embedding(w, from_vector<int64_t>({3, 1000000}).to(gpu()));
  sum(out).backward();
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "index 1000000 at flat position 1");
  auto v = out.detach().to_vector<float>();
  for (int j = 0; j < 4; ++j) {
    EXPECT_FALSE(std::isnan(v[j]));
    EXPECT_TRUE(std::isnan(v[4 + j]));
  }
  Tensor expect = zeros({10, 4});
  expect.slice(0, 3, 4).fill_(1.0);
  EXPECT_TRUE(bitwise_equal(w.grad(), expect));
}

TEST(EmbeddingCuda, KernelsCalledWithABadIndexStayInBounds) {
  KIRZL_REQUIRE_GPU();
  if (kGpuDryRun) GTEST_SKIP() << "a property of the CUDA kernels that the CPU kernels do not share";
  Tensor w = uniform_cpu({10, 4}, DType::f32).to(gpu());
  Tensor idx = from_vector<int64_t>({3, 1000000, -7}).to(gpu());
  Tensor out = empty({3, 4}, {.dtype = DType::f32, .device = gpu()});
  kernels::embedding_forward(out, w, idx);
  auto v = out.to_vector<float>();
  for (int j = 0; j < 4; ++j) {
    EXPECT_FALSE(std::isnan(v[j]));
    EXPECT_TRUE(std::isnan(v[4 + j]));
    EXPECT_TRUE(std::isnan(v[8 + j]));
  }
  Tensor gw = zeros({10, 4}, {.dtype = DType::f32, .device = gpu()});
  kernels::embedding_backward(gw, full({3, 4}, 1.0, {.dtype = DType::f32, .device = gpu()}), idx);
  Tensor expect = zeros({10, 4});
  expect.slice(0, 3, 4).fill_(1.0);
  EXPECT_TRUE(bitwise_equal(gw, expect));
}
