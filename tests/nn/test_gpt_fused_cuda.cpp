// GPT::fused_loss on CUDA, whose MLPs run gelu_mlp (cuBLASLt epilogues, Note [GEMM epilogues]),
// against GPT::loss on the CPU from the same weights: the loss and the gradient of every
// parameter, in f32, with widths the epilogues take (4C a multiple of 8). Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"

#include <cstdlib>

namespace {
// These tests are about the epilogues, which the ops use only with KIRZL_GEMM_EPILOGUES on (off by
// default until a GPU run has verified them; read once per process): on before any test runs.
const bool kGemmEpiloguesOn = [] { return setenv("KIRZL_GEMM_EPILOGUES", "1", 1) == 0; }();
}  // namespace

using namespace kirzl;
using models::GPT;
using models::GPTConfig;
using kirzl::testing::test_gpu;

namespace {

Tensor tokens(const Shape& shape, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return randint(0, vocab, shape, {.dtype = DType::i64}, &gen);
}

}  // namespace

TEST(GPTFusedCuda, FusedLossOnCudaEqualsLossOnCpu) {
  KIRZL_REQUIRE_GPU();
  GPTConfig c{.vocab_size = 37, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
  manual_seed(31);
  GPT cpu(c);
  manual_seed(31);
  GPT gpu(c);  // the same weights
  gpu.to(test_gpu());
  Tensor idx = tokens({3, 13}, 37, 32), tgt = tokens({3, 13}, 37, 33);
  Tensor plain = cpu.loss(idx, tgt);
  plain.backward();
  Tensor fused = gpu.fused_loss(idx.to(test_gpu()), tgt.to(test_gpu()));
  fused.backward();
  EXPECT_NEAR(fused.item(), plain.item(), 1e-4 * std::abs(plain.item()));
  const auto pc = cpu.parameters(), pg = gpu.parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pg[i].grad().defined()) << "parameter " << i;
    const double scale = std::max(1e-3, max(abs(pc[i].grad())).item());
    const double diff = max(abs(sub(pg[i].grad().to(Device::cpu()), pc[i].grad()))).item();
    EXPECT_LT(diff, 1e-4 * scale) << "parameter " << i;
  }
}
