// CUDA classifier loss (linear_cross_entropy's kernels) against the CPU kernels: per-row loss and
// log-sum-exp with ignored rows, the in-place gradient into poisoned-free logits, f32/bf16/f16,
// i32/i64 targets, with and without padding columns that are no classes (Note [GPT vocabulary
// padding]); and the public op (GEMM + loss + in-place backward) against the CPU op, chunked and
// not, with and without num_classes; an out-of-range target reported at the next synchronising
// point (Note [deferred index check]) and never read.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include <cmath>

#include "kernels/fused_classifier.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

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
        for (int64_t v : {1, 3, 1000, 50257})
          for (int64_t pad : {0, 47}) {
            SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dtype_name(it) + " n=" + std::to_string(n) +
                         " v=" + std::to_string(v) + " pad=" + std::to_string(pad));
            // Large padding logits: if they entered the softmax, lse and the loss would differ.
            Tensor x = rnd({n, v + pad}, dt, 1, 4.0), t = targets(n, v, it, 2);
            if (pad > 0) x.narrow(1, v, pad).fill_(30.0);
            Tensor l_c = empty({n}), s_c = empty({n});
            kernels::classifier_forward.kernel(DeviceType::CPU)(l_c, s_c, x, t, v, -100);
            if (pad > 0) {
              Tensor l_ref = empty({n}), s_ref = empty({n});
              kernels::classifier_forward.kernel(DeviceType::CPU)(l_ref, s_ref, x.narrow(1, 0, v).contiguous(), t, v, -100);
              EXPECT_TRUE(all_close(s_c, s_ref, {1e-6, 1e-6})) << "CPU lse ignores the padding";
            }
            Tensor xd = x.to(kGpu), td = t.to(kGpu);
            Tensor l = empty({n}, {.device = kGpu}), s = empty({n}, {.device = kGpu});
            poison(l);
            poison(s);
            kernels::classifier_forward.kernel(DeviceType::CUDA)(l, s, xd, td, v, -100);
            EXPECT_TRUE(all_close(s, s_c, {1e-5, 1e-5})) << "lse";
            EXPECT_TRUE(all_close(l, l_c, {1e-5, 1e-5})) << "loss";

            Tensor grad = full({}, 0.75, {.dtype = DType::f32});
            Tensor gx_c = x.clone();
            kernels::classifier_backward_inplace.kernel(DeviceType::CPU)(gx_c, t, s_c, grad, 0.01, v, -100);
            kernels::classifier_backward_inplace.kernel(DeviceType::CUDA)(xd, td, s, grad.to(kGpu), 0.01, v, -100);
            // p = exp(x - lse): the CPU sums 50257 exponentials one after another in f32, the GPU
            // in a tree; the two lse differ by up to ~1e-4 absolute, so p by ~1e-4 relative (H200).
            const auto tol = dt == DType::f32 ? Tolerance{2e-4, 1e-7} : tolerance_for(dt);
            EXPECT_TRUE(all_close(xd, gx_c, tol)) << "in-place gradient";
            if (pad > 0) {
              EXPECT_EQ(max(abs(gx_c.narrow(1, v, pad).to(DType::f32))).item(), 0.0) << "CPU padding gradient";
              EXPECT_EQ(max(abs(xd.narrow(1, v, pad).to(DType::f32))).item(), 0.0) << "CUDA padding gradient";
            }
          }
}

TEST(ClassifierCuda, PublicOpMatchesCpuOp) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t chunk : {0, 64})
      for (int64_t classes : {0, 4957}) {  // 4957 of 5003 rows: the rest padding
        const int64_t n = 257, c = 96, v = 5003;
        Tensor h = rnd({n, c}, dt, 10), w = rnd({v, c}, dt, 11, 0.2);
        Tensor t = targets(n, classes ? classes : v, DType::i64, 12);
        Tensor hc = h.clone().requires_grad_(), wc = w.clone().requires_grad_();
        Tensor hg = h.to(kGpu).requires_grad_(), wg = w.to(kGpu).requires_grad_();
        LinearCrossEntropyOptions o{.chunk_rows = chunk, .num_classes = classes};
        Tensor lc = linear_cross_entropy(hc, wc, t, o);
        Tensor lg = linear_cross_entropy(hg, wg, t.to(kGpu), o);
        EXPECT_TRUE(all_close(lg, lc, {1e-4, 1e-4})) << "loss, chunk " << chunk << ", classes " << classes;
        lc.backward();
        lg.backward();
        const auto tol = dt == DType::f32 ? Tolerance{1e-3, 1e-5} : Tolerance{3e-2, 1e-3};
        EXPECT_TRUE(all_close(hg.grad(), hc.grad(), tol)) << "d hidden, chunk " << chunk << ", classes " << classes;
        EXPECT_TRUE(all_close(wg.grad(), wc.grad(), tol)) << "d weight, chunk " << chunk << ", classes " << classes;
        if (classes > 0) {
          EXPECT_EQ(max(abs(wg.grad().narrow(0, classes, v - classes).to(DType::f32))).item(), 0.0)
              << "padding rows' gradient, chunk " << chunk;
        }
      }
}

TEST(ClassifierCuda, OutOfRangeTargetIsRejected) {
  KIRZL_REQUIRE_GPU();
  Tensor h = rnd({4, 8}, DType::f32, 20).to(kGpu), w = rnd({5, 8}, DType::f32, 21).to(kGpu);
  Tensor t = from_vector<int64_t>({1, -100, 7, 2}).to(kGpu);
  const char* msg = "linear_cross_entropy: target 7 at row 2 is out of range for 5 classes (expected 0 .. 4 or "
                    "ignore_index -100)";
  if (cuda::sync_index_checks()) {
    EXPECT_KIRZL_ERROR(linear_cross_entropy(h, w, t), ErrorCode::InvalidArgument, msg);
    return;
  }
  // Deferred: forward and backward run without waiting (the kernels never read column 7: a NaN
  // loss), and the error comes at the next synchronising point, once.
  Tensor hg = h.detach().requires_grad_();
  Tensor loss;
  ASSERT_NO_THROW(loss = linear_cross_entropy(hg, w, t));
  ASSERT_NO_THROW(loss.backward());
  EXPECT_KIRZL_ERROR(loss.item(), ErrorCode::InvalidArgument, msg);
  EXPECT_TRUE(std::isnan(loss.item()));
  EXPECT_NO_THROW(cuda::synchronize(0));
  // And with i32 targets, at a Stream synchronize.
  Tensor l32 = linear_cross_entropy(h, w, from_vector<int32_t>({-2, 0, 0, 0}).to(kGpu), {.chunk_rows = 2});
  EXPECT_KIRZL_ERROR(cuda::Stream::current(0).synchronize(), ErrorCode::InvalidArgument, "target -2 at row 0");
}

TEST(ClassifierCuda, ForwardKernelGivesNaNForATargetOutOfRange) {
  KIRZL_REQUIRE_GPU();
  // Four classes in five columns: a target in the padding column is out of range too.
  Tensor logits = rnd({4, 5}, DType::f32, 22).to(kGpu);
  Tensor t = from_vector<int64_t>({1, 1000000, -7, 4}).to(kGpu);
  Tensor losses = empty({4}, {.dtype = DType::f32, .device = kGpu});
  Tensor lse = empty({4}, {.dtype = DType::f32, .device = kGpu});
  kernels::classifier_forward(losses, lse, logits, t, 4, -100);
  auto l = losses.to_vector<float>();
  EXPECT_FALSE(std::isnan(l[0]));
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_TRUE(std::isnan(l[2]));
  EXPECT_TRUE(std::isnan(l[3]));
}

}  // namespace
