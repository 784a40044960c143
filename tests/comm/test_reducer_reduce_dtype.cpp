// DDPOptions::reduce_dtype on the in-process backend: bf16 reduction gives the f32 gradients to
// bf16 precision, and really travels in bf16.
#include <gtest/gtest.h>

#include <cmath>

#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"

using namespace kirzl;
namespace nn = kirzl::nn;
using kirzl::testing::run_rank_threads;

namespace {

// The averaged gradients of rank 0 after one backward on 4 in-process ranks.
std::vector<std::vector<float>> grads_after_backward(DType reduce_dtype) {
  std::vector<std::vector<float>> result;
  // The same model on every rank and in every call: each rank thread draws the initial weights
  // from its own default generator (Note [per-thread default generator]).
  run_rank_threads(4, [&](int r, std::shared_ptr<comm::Communicator> c) {
    GeneratorScope rng(3);
    nn::Sequential model(nn::Linear(12, 16), nn::ReLU(), nn::Linear(16, 3));
    DistributedDataParallel ddp(model, c, {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002,
                                            .reduce_dtype = reduce_dtype});
    Generator g(100 + r);
    Tensor x = randn({5, 12}, {}, &g);
    Tensor y = randint(0, 3, {5}, {.dtype = DType::i64}, &g);
    cross_entropy(ddp(x), y).backward();
    if (r == 0)
      for (auto& p : model.parameters()) result.push_back(p.grad().to_vector<float>());
  });
  return result;
}

bool bf16_representable(float v) { return static_cast<float>(BFloat16(v)) == v; }

}  // namespace

TEST(DDPReduceDtype, Bf16MatchesF32WithinBf16Tolerance) {
  auto exact = grads_after_backward(DType::f32);
  auto low = grads_after_backward(DType::bf16);
  ASSERT_EQ(exact.size(), low.size());
  size_t not_representable = 0, total = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    ASSERT_EQ(exact[i].size(), low[i].size());
    float scale = 0;
    for (float v : exact[i]) scale = std::max(scale, std::abs(v));
    for (size_t k = 0; k < exact[i].size(); ++k) {
      // bf16 keeps 8 significant bits: each rank's gradient and the average are rounded once.
      EXPECT_NEAR(low[i][k], exact[i][k], 1e-2 * std::abs(exact[i][k]) + 4e-3 * scale) << "parameter " << i << " element " << k;
      EXPECT_TRUE(bf16_representable(low[i][k])) << "the bf16 path writes back bf16 values: " << low[i][k];
      not_representable += !bf16_representable(exact[i][k]);
      ++total;
    }
  }
  EXPECT_GT(not_representable, total / 2) << "the f32 path keeps full precision";
}

TEST(DDPReduceDtype, OnlyF32AndBf16AndNotWithAHook) {
  nn::Linear model(3, 2);
  auto c = comm::make_in_process_group(1).front();
  EXPECT_KIRZL_ERROR(DistributedDataParallel(model, c, {.reduce_dtype = DType::f16}), ErrorCode::InvalidArgument,
                     "reduce_dtype must be f32 or bf16", "f16");
  EXPECT_KIRZL_ERROR(DistributedDataParallel(model, c, {.comm_hook = comm_hooks::allreduce(), .reduce_dtype = DType::bf16}),
                     ErrorCode::InvalidArgument, "reduce_dtype = bf16 and a comm_hook");
}
