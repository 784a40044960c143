// CUDA classifier loss (linear_cross_entropy's kernels) against the CPU kernels: per-row loss and
// log-sum-exp with ignored rows, the in-place gradient into poisoned-free logits, f32/bf16/f16,
// i32/i64 targets; and the public op (GEMM + loss + in-place backward) against the CPU op, chunked
// and not.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "kernels/fused_classifier.h"
#include "support/cuda_compare.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
using kirzl::testing::poison;
using kirzl::testing::Tolerance;
using kirzl::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);

Tensor rnd(const Shape& s, DType dt, uint64_t seed, double mul_by = 1.0) {
  Generator gen(seed);
  return mul(randn(s, {.dtype = DType::f32}, &gen), mul_by).to(dt);
}

Tensor targets(int64_t n, int64_t v, DType dt, uint64_t seed) {
  Generator gen(seed);
  auto t = randint(0, v, {n}, {.dtype = DType::i64}, &gen).to_vector<int64_t>();
  for (int64_t i = 2; i < n; i += 5) t[i] = -100;
  return from_vector<int64_t>(t, {n}).to(dt);
}

TEST(ClassifierCuda, KernelsMatchCpu) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (DType it : {DType::i32, DType::i64})
      for (int64_t n : {1, 17, 100})
        for (int64_t v : {1, 3, 1000, 50257}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dtype_name(it) + " n=" + std::to_string(n) +
                       " v=" + std::to_string(v));
          Tensor x = rnd({n, v}, dt, 1, 4.0), t = targets(n, v, it, 2);
          Tensor l_c = empty({n}), s_c = empty({n});
          kernels::cpu::classifier_forward(l_c, s_c, x, t, -100);
          Tensor xd = x.to(kGpu), td = t.to(kGpu);
          Tensor l = empty({n}, {.device = kGpu}), s = empty({n}, {.device = kGpu});
          poison(l);
          poison(s);
          kernels::cuda::classifier_forward(l, s, xd, td, -100);
          EXPECT_TRUE(all_close(s, s_c, {1e-5, 1e-5})) << "lse";
          EXPECT_TRUE(all_close(l, l_c, {1e-5, 1e-5})) << "loss";

          Tensor grad = full({}, 0.75, {.dtype = DType::f32});
          Tensor gx_c = x.clone();
          kernels::cpu::classifier_backward_inplace(gx_c, t, s_c, grad, 0.01, -100);
          kernels::cuda::classifier_backward_inplace(xd, td, s, grad.to(kGpu), 0.01, -100);
          const auto tol = dt == DType::f32 ? Tolerance{1e-5, 1e-7} : tolerance_for(dt);
          EXPECT_TRUE(all_close(xd, gx_c, tol)) << "in-place gradient";
        }
}

TEST(ClassifierCuda, PublicOpMatchesCpuOp) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t chunk : {0, 64}) {
      const int64_t n = 257, c = 96, v = 5003;
      Tensor h = rnd({n, c}, dt, 10), w = rnd({v, c}, dt, 11, 0.2), t = targets(n, v, DType::i64, 12);
      Tensor hc = h.clone().requires_grad_(), wc = w.clone().requires_grad_();
      Tensor hg = h.to(kGpu).requires_grad_(), wg = w.to(kGpu).requires_grad_();
      LinearCrossEntropyOptions o{.chunk_rows = chunk};
      Tensor lc = linear_cross_entropy(hc, wc, t, o);
      Tensor lg = linear_cross_entropy(hg, wg, t.to(kGpu), o);
      EXPECT_TRUE(all_close(lg, lc, {1e-4, 1e-4})) << "loss, chunk " << chunk;
      lc.backward();
      lg.backward();
      const auto tol = dt == DType::f32 ? Tolerance{1e-3, 1e-5} : Tolerance{3e-2, 1e-3};
      EXPECT_TRUE(all_close(hg.grad(), hc.grad(), tol)) << "d hidden, chunk " << chunk;
      EXPECT_TRUE(all_close(wg.grad(), wc.grad(), tol)) << "d weight, chunk " << chunk;
    }
}

}  // namespace
