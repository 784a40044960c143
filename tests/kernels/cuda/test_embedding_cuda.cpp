// CUDA embedding against the CPU kernels: gathers for i32/i64 indices and rows of odd byte sizes
// (1, 3, 13 elements: narrow copies) and aligned ones (768); the backward with many repeated
// indices equals the CPU bit for bit in f32 (same order of additions, Note [embedding backward
// order]) and is bitwise identical over two runs; out-of-range indices are rejected by the op (at
// the next synchronising point, Note [deferred index check], or at the call under
// KIRZL_SYNC_INDEX_CHECKS=1) and never read by the kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "kernels/cuda/nn_cuda_test_util.hpp"
#include "kernels/embedding.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

Tensor random_indices(const Shape& s, int64_t num, DType dt, uint64_t seed = 11) {
  Generator gen(seed);
  return randint(0, num, s, {.dtype = DType::i64}, &gen).to(dt);
}

}  // namespace

TEST(EmbeddingCuda, ForwardMatchesCpuWithPoisonedOutput) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::i64})
    for (int64_t dim : {1, 3, 13, 768})
      for (DType idt : {DType::i32, DType::i64}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " dim " + std::to_string(dim) + " indices " + dtype_name(idt));
        const int64_t num = 257;
        Tensor w = cpu_uniform({num, dim}, DType::f64, -100, 100).to(dt);
        Tensor idx = random_indices({17, 3}, num, idt);
        Tensor ref = empty({51, dim}, {.dtype = dt});
        kernels::embedding_forward.kernel(DeviceType::CPU)(ref, w, idx);
        Tensor out = empty({51, dim}, {.dtype = dt, .device = gpu()});
        poison(out);
        kernels::embedding_forward(out, w.to(gpu()), idx.to(gpu()));
        EXPECT_TRUE(bitwise_equal(out, ref));
      }
}

TEST(EmbeddingCuda, BackwardWithRepeatedIndicesMatchesCpuExactlyAndIsReproducible) {
  KIRZL_REQUIRE_GPU();
  for (int64_t dim : {1, 3, 768, 1000})
    for (DType idt : {DType::i32, DType::i64}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + " indices " + dtype_name(idt));
      const int64_t num = 50, n = 5000;  // ~100 repeats of each used row; rows 7 .. 49 unused
      Tensor idx = random_indices({n}, 7, idt);
      Tensor g = cpu_uniform({n, dim}, DType::f32, -1, 1, 3);
      Tensor ref = zeros({num, dim}, {.dtype = DType::f32});
      kernels::embedding_backward.kernel(DeviceType::CPU)(ref, g, idx);
      Tensor gg = g.to(gpu()), ig = idx.to(gpu());
      Tensor a = zeros({num, dim}, {.dtype = DType::f32, .device = gpu()});
      Tensor b = zeros({num, dim}, {.dtype = DType::f32, .device = gpu()});
      kernels::embedding_backward(a, gg, ig);
      kernels::embedding_backward(b, gg, ig);
      EXPECT_TRUE(bitwise_equal(a, ref)) << "same order of f32 additions as the CPU";
      EXPECT_TRUE(bitwise_equal(a, b)) << "two runs";
    }
}

TEST(EmbeddingCuda, Bf16BackwardAccumulatesInF32) {
  KIRZL_REQUIRE_GPU();
  if (kNnDryRun) GTEST_SKIP() << "a property of the CUDA kernels that the CPU kernels do not share";
  const int64_t num = 1000, dim = 768, n = 8192;
  Tensor idx = random_indices({n}, 30, DType::i64);  // heavy repetition
  Tensor g = cpu_uniform({n, dim}, DType::bf16, -1, 1, 3);
  // Reference: the CPU kernel in f32 on the same bf16 values, rounded once.
  Tensor ref32 = zeros({num, dim}, {.dtype = DType::f32});
  kernels::embedding_backward.kernel(DeviceType::CPU)(ref32, g.to(DType::f32), idx);
  Tensor a = zeros({num, dim}, {.dtype = DType::bf16, .device = gpu()});
  Tensor b = zeros({num, dim}, {.dtype = DType::bf16, .device = gpu()});
  kernels::embedding_backward(a, g.to(gpu()), idx.to(gpu()));
  kernels::embedding_backward(b, g.to(gpu()), idx.to(gpu()));
  EXPECT_TRUE(all_close(a, ref32.to(DType::bf16), {4e-3, 1e-6}));
  EXPECT_TRUE(bitwise_equal(a, b));
}

TEST(EmbeddingCuda, PublicOpThroughAutograd) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (bool nc : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (nc ? " non-contiguous" : ""));
      Tensor idx = random_indices({4, 33}, 20, DType::i64);
      expect_op_matches_cpu([&](const std::vector<Tensor>& xs, Device d) { return embedding(xs[0], idx.to(d)); },
                            {cpu_uniform({20, 64}, dt)}, tolerance_for(dt), nc);
    }
}

// Whether the op checks at the call: always in a dry run (the CPU), on CUDA only when asked.
bool eager_index_checks() { return kNnDryRun || cuda::sync_index_checks(); }

// `sync` waits for the device the way a user would; the index error surfaces there.
void expect_reported_at(const std::function<void()>& sync, const char* what) {
  SCOPED_TRACE(what);
  Tensor w = cpu_uniform({10, 4}, DType::f32).to(gpu());
  Tensor idx = from_vector<int64_t>({1, 2, 10}).to(gpu());
  Tensor out;
  ASSERT_NO_THROW(out = embedding(w, idx)) << "the deferred check must not wait for the GPU";
  EXPECT_KIRZL_ERROR(sync(), ErrorCode::InvalidArgument, "embedding: index 10 at flat position 2 of indices i64[3] on cuda:0",
                     "weight with 10 rows (expected 0 .. 9)");
  EXPECT_NO_THROW(cuda::synchronize(0)) << "an error is reported once";
}

TEST(EmbeddingCuda, OutOfRangeIndexIsRejectedByTheOp) {
  KIRZL_REQUIRE_GPU();
  Tensor w = cpu_uniform({10, 4}, DType::f32).to(gpu());
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
  Tensor w = cpu_uniform({10, 4}, DType::f32).to(gpu());
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
  Tensor w = cpu_uniform({10, 4}, DType::f32).to(gpu()).requires_grad_();
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
  if (kNnDryRun) GTEST_SKIP() << "a property of the CUDA kernels that the CPU kernels do not share";
  Tensor w = cpu_uniform({10, 4}, DType::f32).to(gpu());
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
