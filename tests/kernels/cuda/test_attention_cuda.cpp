// CUDA reference causal attention against the CPU kernels for T = 1, 17, 128 (and D != Dv),
// f32/bf16, poisoned outputs (probabilities above the diagonal must be written as zeros), only
// some gradients wanted, and the public op through autograd on non-contiguous [B, H, T, D] inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/attention.h"
#include "kernels/cuda/nn_cuda_test_util.hpp"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

struct Out {
  Tensor out, probs, gq, gk, gv;
};

Out run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, bool gq, bool gk, bool gv) {
  const Device d = q.device();
  const int64_t B = q.size(0), T = q.size(1), Dv = v.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(2)));
  Out r;
  r.out = empty({B, T, Dv}, {.dtype = q.dtype(), .device = d});
  r.probs = empty({B, T, T}, {.dtype = DType::f32, .device = d});
  poison(r.out);
  poison(r.probs);
  kernels::attention_forward(r.out, r.probs, q, k, v, scale);
  auto make = [&](bool want, const Tensor& like) {
    if (!want) return Tensor();
    Tensor t = empty(like.shape(), {.dtype = like.dtype(), .device = d});
    poison(t);
    return t;
  };
  r.gq = make(gq, q);
  r.gk = make(gk, k);
  r.gv = make(gv, v);
  kernels::attention_backward(r.gq, r.gk, r.gv, g, r.probs, q, k, v, scale);
  return r;
}

}  // namespace

TEST(AttentionCuda, KernelsMatchCpuWithPoisonedOutputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t T : {1, 17, 128})
      for (auto [D, Dv] : {std::pair<int64_t, int64_t>{16, 16}, {8, 12}}) {
        SCOPED_TRACE("T " + std::to_string(T) + " D " + std::to_string(D) + " Dv " + std::to_string(Dv) + " " +
                     dtype_name(dt));
        const int64_t B = 6;  // batch * heads
        Tensor q = cpu_uniform({B, T, D}, dt, -1, 1, 1), k = cpu_uniform({B, T, D}, dt, -1, 1, 2);
        Tensor v = cpu_uniform({B, T, Dv}, dt, -1, 1, 3), g = cpu_uniform({B, T, Dv}, dt, -1, 1, 4);
        Out ref = run(q, k, v, g, true, true, true);
        Out got = run(q.to(gpu()), k.to(gpu()), v.to(gpu()), g.to(gpu()), true, true, true);
        const Tolerance tol = dt == DType::f32 ? Tolerance{1e-4, 1e-5} : tolerance_for(dt);
        EXPECT_TRUE(all_close(got.probs, ref.probs, {1e-5, 1e-6})) << "probs";
        EXPECT_TRUE(all_close(got.out, ref.out, tol)) << "out";
        EXPECT_TRUE(all_close(got.gq, ref.gq, tol)) << "gq";
        EXPECT_TRUE(all_close(got.gk, ref.gk, tol)) << "gk";
        EXPECT_TRUE(all_close(got.gv, ref.gv, tol)) << "gv";
      }
}

TEST(AttentionCuda, OnlySomeGradientsWanted) {
  KIRZL_REQUIRE_GPU();
  const int64_t B = 3, T = 33, D = 16;
  Tensor q = cpu_uniform({B, T, D}, DType::f32, -1, 1, 1), k = cpu_uniform({B, T, D}, DType::f32, -1, 1, 2);
  Tensor v = cpu_uniform({B, T, D}, DType::f32, -1, 1, 3), g = cpu_uniform({B, T, D}, DType::f32, -1, 1, 4);
  Out ref = run(q, k, v, g, true, true, true);
  for (int mask = 1; mask < 8; ++mask) {
    SCOPED_TRACE("mask " + std::to_string(mask));
    Out got = run(q.to(gpu()), k.to(gpu()), v.to(gpu()), g.to(gpu()), mask & 1, mask & 2, mask & 4);
    if (mask & 1) {
      EXPECT_TRUE(all_close(got.gq, ref.gq, {1e-4, 1e-5}));
    }
    if (mask & 2) {
      EXPECT_TRUE(all_close(got.gk, ref.gk, {1e-4, 1e-5}));
    }
    if (mask & 4) {
      EXPECT_TRUE(all_close(got.gv, ref.gv, {1e-4, 1e-5}));
    }
  }
}

TEST(AttentionCuda, PublicOpThroughAutogradOnNonContiguousInputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t T : {1, 17, 128})
      for (bool nc : {false, true}) {
        SCOPED_TRACE("T " + std::to_string(T) + " " + dtype_name(dt) + (nc ? " non-contiguous" : ""));
        const Tolerance tol = dt == DType::f32 ? Tolerance{1e-4, 1e-5} : tolerance_for(dt);
        expect_op_matches_cpu(
            [](const std::vector<Tensor>& xs, Device) { return causal_attention(xs[0], xs[1], xs[2]); },
            {cpu_uniform({2, 3, T, 16}, dt, -1, 1, 1), cpu_uniform({2, 3, T, 16}, dt, -1, 1, 2),
             cpu_uniform({2, 3, T, 16}, dt, -1, 1, 3)},
            tol, nc);
      }
}
